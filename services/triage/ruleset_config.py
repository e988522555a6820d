"""The versioned rules configuration (``rulesets/v<version>.toml``): its model, its checks, and
loading it at start-up. A file that is not valid stops the service with a message naming the
file, the setting and what is wrong with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mset_contract.catalogue import available_versions, load_catalogue
from mset_contract.triage import AgencyDesignation, EscalationKind, TriageTimers, Urgency
from mset_contract.vocab import IndicatorArea, IndicatorKind, Recency, RiskLevel, Role

VERSION_PATTERN = r"^[0-9][0-9a-z.-]{0,19}$"
_FILE_NAME = re.compile(r"^v([0-9][0-9a-z.-]{0,19})\.toml$")

Points = Annotated[int, Field(ge=0, le=100)]
Hours = Annotated[int, Field(ge=0, le=24 * 366)]
Days = Annotated[int, Field(ge=1, le=3660)]


class RulesetConfigError(Exception):
    """A rules file that cannot be used; the message names the file and the problem."""


class _Config(BaseModel):
    # A misspelt setting must stop start-up, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class KindWeights(_Config):
    current: Points
    six_to_twelve_months: Points
    over_twelve_months: Points

    def for_recency(self, recency: Recency) -> int:
        return int(getattr(self, recency.value))


class Weights(_Config):
    vulnerability: KindWeights
    moderate: KindWeights
    significant: KindWeights

    def for_kind(self, kind: IndicatorKind) -> KindWeights:
        weights: KindWeights = getattr(self, kind.value)
        return weights


class Band(_Config):
    level: RiskLevel
    min_score: Annotated[int, Field(ge=0)]


class YoungChildFloor(_Config):
    description: str
    under_age: Annotated[int, Field(ge=1, le=18)]
    level: RiskLevel


class AreaMaximumFloor(_Config):
    description: str
    min_area_score: Annotated[int, Field(ge=1)]
    level: RiskLevel


class Floors(_Config):
    young_child: YoungChildFloor | None = None
    area_maximum: AreaMaximumFloor | None = None


class IndicatorMatch(_Config):
    """Which indicators a rule applies to: any of ``areas`` or ``codes``, narrowed by
    ``kinds`` and ``recencies`` when they are given."""

    areas: list[IndicatorArea] = []
    codes: list[str] = []
    kinds: list[IndicatorKind] = []
    recencies: list[Recency] = []

    @model_validator(mode="after")
    def _matches_something(self) -> IndicatorMatch:
        if not self.areas and not self.codes:
            raise ValueError("give at least one of areas or codes")
        known = {i.code for v in available_versions() for i in load_catalogue(v).indicator}
        unknown = [c for c in self.codes if c not in known]
        if unknown:
            raise ValueError(f"codes not in any indicator catalogue: {', '.join(unknown)}")
        return self


class Override(IndicatorMatch):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
    description: str
    level: RiskLevel


class PreMset(_Config):
    levels: list[RiskLevel] = Field(min_length=1)


class Target(_Config):
    role: Role | None = None
    agency: AgencyDesignation


class _Escalation(_Config):
    enabled: bool = True
    urgency: Urgency
    respond_within_hours: Hours | None = None
    notify: list[Target] = Field(min_length=1)

    # Designations whose agency_ref comes from the fact the rule fired on; a target naming
    # one elsewhere could never be resolved to an agency.
    subject_agencies: ClassVar[frozenset[AgencyDesignation]] = frozenset()

    @model_validator(mode="after")
    def _targets_resolvable(self) -> _Escalation:
        per_subject = {AgencyDesignation.other_authority, AgencyDesignation.action_owner}
        for n, t in enumerate(self.notify):
            if t.agency in per_subject and t.agency not in self.subject_agencies:
                raise ValueError(f"notify.{n}: agency {t.agency.value} cannot be known here")
        return self


class HighRisk(_Escalation):
    levels: list[RiskLevel] = [RiskLevel.high]


class ChildProtection(IndicatorMatch, _Escalation):
    under_age: Annotated[int, Field(ge=1, le=18)]


class RepeatMissing(_Escalation):
    episodes: Annotated[int, Field(ge=1, le=100)]
    within_days: Days


class RhiNotOffered(_Escalation):
    within_hours: Annotated[int, Field(ge=1, le=24 * 30)]
    look_back_days: Days

    @model_validator(mode="after")
    def _look_back_covers_deadline(self) -> RhiNotOffered:
        if self.look_back_days * 24 <= self.within_hours:
            raise ValueError("look_back_days must be longer than within_hours")
        return self


class MissingElsewhere(_Escalation):
    look_back_days: Days
    subject_agencies = frozenset({AgencyDesignation.other_authority})


class ActionDueSoon(_Escalation):
    hours_before_due: Annotated[int, Field(ge=1, le=24 * 60)]
    subject_agencies = frozenset({AgencyDesignation.action_owner})


class ActionOverdue(_Escalation):
    grace_hours: Hours
    subject_agencies = frozenset({AgencyDesignation.action_owner})


class Reassessment(_Escalation):
    after_days: Days


class Transition(_Escalation):
    within_days: Days


class JudgementReview(_Escalation):
    pass


class Escalations(_Config):
    high_risk: HighRisk
    child_protection: ChildProtection
    repeat_missing: RepeatMissing
    rhi_not_offered: RhiNotOffered
    missing_in_other_authority: MissingElsewhere
    action_due_soon: ActionDueSoon
    action_overdue: ActionOverdue
    reassessment_overdue: Reassessment
    transition_to_adult_services: Transition
    judgement_review: JudgementReview

    def get(self, kind: EscalationKind) -> _Escalation:
        esc: _Escalation = getattr(self, kind.value)
        return esc

    def enabled(self, kind: EscalationKind) -> _Escalation | None:
        esc = self.get(kind)
        return esc if esc.enabled else None


class RulesetConfig(_Config):
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    published: str
    description: str
    weights: Weights
    bands: list[Band] = Field(min_length=1)
    floors: Floors = Floors()
    overrides: list[Override] = []
    pre_mset: PreMset
    escalations: Escalations

    @model_validator(mode="after")
    def _bands_cover_every_score_in_order(self) -> RulesetConfig:
        # Exactly one band must match any score, or the rules could suggest no level at all.
        if self.bands[0].min_score != 0:
            raise ValueError("bands: the first band must start at min_score 0")
        for prev, band in zip(self.bands, self.bands[1:], strict=False):
            if band.min_score <= prev.min_score:
                raise ValueError(
                    f"bands: {band.level.value} starts at {band.min_score}, not above "
                    f"{prev.level.value} at {prev.min_score}"
                )
            if band.level.rank <= prev.level.rank:
                raise ValueError(
                    f"bands: {band.level.value} follows {prev.level.value}; "
                    "bands go from lower to higher levels"
                )
        names = [o.name for o in self.overrides]
        if len(set(names)) != len(names):
            raise ValueError("overrides: each name may appear once")
        return self

    def band_range(self, n: int) -> tuple[int, int | None]:
        """Scores of band ``n``: from its minimum up to (not including) the next band's."""
        upper = self.bands[n + 1].min_score if n + 1 < len(self.bands) else None
        return self.bands[n].min_score, upper

    def timers(self) -> TriageTimers:
        e = self.escalations

        def on(kind: EscalationKind, value: int) -> int | None:
            return value if e.get(kind).enabled else None

        return TriageTimers(
            rhi_deadline_hours=on(EscalationKind.rhi_not_offered, e.rhi_not_offered.within_hours),
            repeat_missing_episodes=on(EscalationKind.repeat_missing, e.repeat_missing.episodes),
            repeat_missing_window_days=on(
                EscalationKind.repeat_missing, e.repeat_missing.within_days
            ),
            action_reminder_hours_before_due=on(
                EscalationKind.action_due_soon, e.action_due_soon.hours_before_due
            ),
            action_overdue_grace_hours=on(
                EscalationKind.action_overdue, e.action_overdue.grace_hours
            ),
            reassessment_days=on(
                EscalationKind.reassessment_overdue, e.reassessment_overdue.after_days
            ),
            transition_warning_days=on(
                EscalationKind.transition_to_adult_services,
                e.transition_to_adult_services.within_days,
            ),
            high_risk_response_hours=(
                e.high_risk.respond_within_hours if e.high_risk.enabled else None
            ),
        )


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (check its spelling)"
        # Checks across settings name the setting in their message already.
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def parse_ruleset(text: str, source: str, expect_version: str | None = None) -> RulesetConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesetConfigError(f"{source}: not valid TOML ({exc})") from exc
    try:
        config = RulesetConfig.model_validate(data)
    except ValidationError as exc:
        raise RulesetConfigError(f"{source}: {_describe(exc)}") from exc
    if expect_version is not None and config.version != expect_version:
        raise RulesetConfigError(
            f"{source}: version is {config.version!r} but the file name says {expect_version!r}"
        )
    return config


def load_ruleset_file(path: Path) -> RulesetConfig:
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise RulesetConfigError(f"{path}: a rules file is named v<version>.toml")
    return parse_ruleset(path.read_text(encoding="utf-8"), str(path), match.group(1))


def load_rulesets(directory: Path) -> dict[str, RulesetConfig]:
    """Every ``v*.toml`` in ``directory``, by version. Raises ``RulesetConfigError``."""
    if not directory.is_dir():
        raise RulesetConfigError(f"{directory}: the rules directory does not exist")
    configs: dict[str, RulesetConfig] = {}
    for path in sorted(directory.glob("v*.toml")):
        config = load_ruleset_file(path)
        configs[config.version] = config
    if not configs:
        raise RulesetConfigError(f"{directory}: no rules files (v<version>.toml) found")
    return configs


def packaged_rulesets_dir() -> Path:
    return Path(__file__).parent / "rulesets"

"""Triage: evaluate a case against a rules version and explain the result.

Python here prepares facts (ages, hours since a return, episodes in the rules' window) and
records the conclusions of the rules that fired; it decides nothing itself. The rules, built
from the versioned configuration in ``rules.py``, decide points, bands, floors, overrides,
the suggested level, the judgement, the recommendation and every escalation. Who may ask for
a triage is decided here too (``may_triage``).
"""

from __future__ import annotations

import functools
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mset_contract.auth import SERVICE_PRINCIPAL, Principal
from mset_contract.catalogue import load_catalogue
from mset_contract.triage import (
    AgencyDesignation,
    EscalationKind,
    JudgementRelation,
    PreMsetRecommendation,
    RulesetInfo,
    TriageInput,
    TriageResult,
    Urgency,
)
from mset_contract.types import months_between, today_uk
from mset_contract.vocab import Recency, RiskLevel, Role
from services.triage.engine import RulesEngineError, RulesHost
from services.triage.rules import (
    CompiledRuleset,
    Escalate,
    Fact,
    Judge,
    Level,
    Points,
    Recommend,
    Suggest,
    compile_ruleset,
)
from services.triage.ruleset_config import RulesetConfig, RulesetConfigError, load_rulesets


class NotAllowed(Exception):
    """The caller may not ask for a triage (HTTP 403)."""


# Every staff role may ask for a triage: it suggests, it decides nothing.
STAFF_ROLES = frozenset(Role)


def may_triage(caller: Principal) -> None:
    if caller == SERVICE_PRINCIPAL or (caller.kind == "user" and caller.role in STAFF_ROLES):
        return
    raise NotAllowed(
        "triage is for MSET staff and services; partner systems submit referrals instead"
    )


class UnknownRulesetVersion(Exception):
    def __init__(self, version: str, known: list[str]) -> None:
        super().__init__(f"unknown ruleset version {version!r}; known: {', '.join(known)}")
        self.version = version
        self.known = known


# Keyed by value, so facts read back from the engine need no enum conversion.
_LEVEL: dict[str, RiskLevel] = {lv.value: lv for lv in RiskLevel}
_RECENCY: dict[str, str] = {
    Recency.current.value: "current",
    Recency.six_to_twelve_months.value: "6-12 months ago",
    Recency.over_twelve_months.value: "over 12 months ago",
}
_URGENCY_ORDER = {Urgency.immediate: 0, Urgency.same_day: 1, Urgency.routine: 2}
_KIND_ORDER = {k: n for n, k in enumerate(EscalationKind)}


@functools.cache
def _labels(catalogue_version: str) -> dict[str, str]:
    # Cached by version string: looking a catalogue up by the (frozen, hashed) model itself
    # costs more than the rest of an evaluation.
    return {i.code: i.label for i in load_catalogue(catalogue_version).indicator}


_first = operator.itemgetter(0)


def _escalation_order(e: dict[str, Any]) -> tuple[int, int, str]:
    return _URGENCY_ORDER[e["urgency"]], _KIND_ORDER[e["kind"]], e["subject"] or ""


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _area_name(area: str) -> str:
    return area.replace("_", " ")


def _band_text(low: int, high: int | None) -> str:
    return f"{low} or more" if high is None else f"{low}-{high - 1}"


class Triage:
    """Holds every loaded rules version in one ``RulesHost`` and evaluates inputs with them."""

    def __init__(
        self,
        configs: dict[str, RulesetConfig],
        default_version: str,
        host: RulesHost | None = None,
    ) -> None:
        if default_version not in configs:
            raise RulesetConfigError(
                f"the default ruleset version {default_version!r} has no rules file; "
                f"found: {', '.join(sorted(configs)) or 'none'}"
            )
        self.default_version = default_version
        self.host = host or RulesHost()
        self._rulesets: dict[str, CompiledRuleset] = {}
        for version, config in sorted(configs.items()):
            compiled = compile_ruleset(config)
            self.host.register(compiled.name, compiled.definition)
            self._rulesets[version] = compiled

    @classmethod
    def from_directory(cls, directory: Path, default_version: str) -> Triage:
        return cls(load_rulesets(directory), default_version)

    def close(self) -> None:
        self.host.close()

    def versions(self) -> list[RulesetInfo]:
        return [
            RulesetInfo(
                version=v,
                name=rs.name,
                published=rs.config.published,
                description=rs.config.description,
                default=v == self.default_version,
                rules=len(rs.rules),
                timers=rs.config.timers(),
            )
            for v, rs in sorted(self._rulesets.items())
        ]

    def ruleset(self, version: str | None = None) -> CompiledRuleset:
        version = version or self.default_version
        try:
            return self._rulesets[version]
        except KeyError:
            raise UnknownRulesetVersion(version, sorted(self._rulesets)) from None

    def evaluate(self, inp: TriageInput) -> TriageResult:
        rs = self.ruleset(inp.ruleset_version)
        ev = _Evaluation(rs, inp)
        with self.host.session(rs.name) as session:
            session.assert_facts(ev.case_facts())
            session.run(ev.on_fire)
            session.assert_facts(ev.score_facts())
            session.run(ev.on_fire)
            session.assert_facts(ev.level_facts())
            session.run(ev.on_fire)
        return ev.result()


@dataclass
class _Escalation:
    kind: EscalationKind
    rule: str
    subject: str | None
    reasons: list[str]
    due_at: datetime | None = None
    agency_refs: dict[AgencyDesignation, str] = field(default_factory=dict)


class _Evaluation:
    """One evaluation: the facts it starts from and the conclusions the rules draw."""

    def __init__(self, rs: CompiledRuleset, inp: TriageInput) -> None:
        self.rs = rs
        self.config = rs.config
        self.inp = inp
        self.labels = _labels(inp.catalogue_version)
        self.episodes = {e.episode_ref: e for e in inp.missing_episodes}
        self.actions = {a.action_ref: a for a in inp.actions}
        # The result is assembled as plain data and validated once, in one pass: building
        # dozens of small models one by one costs more than the rules themselves.
        self.fired: list[tuple[tuple[int, int, str, str], dict[str, Any]]] = []
        self.area_scores: dict[str, int] = defaultdict(int)
        self.score = 0
        self.level_ranks: list[int] = []
        self.band_level: RiskLevel | None = None
        self.suggested: RiskLevel | None = None
        self.working: RiskLevel | None = None
        self.judgement: dict[str, Any] | None = None
        self.recommendation: PreMsetRecommendation | None = None
        self.escalations: dict[tuple[EscalationKind, str | None], _Escalation] = {}
        self.repeat_missing = False

    # --- facts ---------------------------------------------------------------------------

    @property
    def days_until_18(self) -> int:
        """Days from as_of to the first of the month the child turns 18; 0 all through that
        month. The input holds the month only (it is kept in workflow history), so the rules
        warn of the transition a little early, never late, and treat the child as not yet 18
        until the month is over."""
        today = today_uk(self.inp.as_of)
        if months_between(today, self.inp.turns_18_month) == 0:
            return 0
        return (self.inp.turns_18_month - today).days

    def case_facts(self) -> list[dict[str, Any]]:
        inp, esc = self.inp, self.config.escalations
        window_start = inp.as_of - timedelta(days=esc.repeat_missing.within_days)
        case: dict[str, Any] = {
            "t": Fact.case,
            "age": inp.age_years,
            "days_until_18": self.days_until_18,
            "episodes_in_window": sum(
                1 for e in inp.missing_episodes if e.reported_at >= window_start
            ),
        }
        if inp.last_assessed_at is not None:
            case["days_since_assessed"] = _hours(inp.as_of, inp.last_assessed_at) / 24
        facts = [case]
        for ind in inp.indicators:
            facts.append(
                {
                    "t": Fact.indicator,
                    "code": ind.code,
                    "area": ind.area,
                    "kind": ind.kind,
                    "recency": ind.recency,
                }
            )
        for e in inp.missing_episodes:
            episode: dict[str, Any] = {
                "t": Fact.episode,
                "ref": e.episode_ref,
                "returned": e.returned_at is not None,
                "rhi_offered": e.rhi_offered_at is not None,
                "other_authority": e.located_in_authority is not None
                and e.located_in_authority != inp.local_authority,
                "days_since_reported": _hours(inp.as_of, e.reported_at) / 24,
            }
            if e.returned_at is not None:
                episode["hours_since_return"] = _hours(inp.as_of, e.returned_at)
            facts.append(episode)
        for a in inp.actions:
            facts.append(
                {
                    "t": Fact.action,
                    "ref": a.action_ref,
                    "completed": a.completed,
                    "hours_past_due": _hours(inp.as_of, a.due_at),
                }
            )
        return facts

    def score_facts(self) -> list[dict[str, Any]]:
        # Adding up the points the scoring rules gave is arithmetic, not a decision: the
        # bands and the area maximum are rules over these sums.
        facts: list[dict[str, Any]] = [{"t": Fact.score, "score": self.score}]
        for area, score in sorted(self.area_scores.items()):
            facts.append({"t": Fact.area, "area": area, "score": score})
        return facts

    def level_facts(self) -> list[dict[str, Any]]:
        return [
            {
                "t": Fact.levels,
                "ranks": sorted(self.level_ranks),
                "referrer": self.inp.referrer_level,
                "rationale": self.inp.referrer_rationale_given,
                "repeat_missing": self.repeat_missing,
            }
        ]

    # --- conclusions ---------------------------------------------------------------------

    def _fire(self, rule_id: str, reason: str, subject: str | None = None, **extra: Any) -> None:
        group, order = self.rs.rules[rule_id].position
        # Listed in reading order, then by subject and reason: the same whatever order the
        # engine fired them in, so the same input always reads the same.
        key = (group, order, subject or "", reason)
        self.fired.append((key, {"rule": rule_id, "reason": reason, "subject": subject, **extra}))

    def _label(self, code: str) -> str:
        return self.labels.get(code, code)

    def on_fire(self, rule_id: str, matched: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        conclusion = self.rs.rules[rule_id].conclusion
        fact = matched[0]
        if isinstance(conclusion, Points):
            self._points(rule_id, conclusion, fact)
        elif isinstance(conclusion, Level):
            self._level(rule_id, conclusion, fact)
        elif isinstance(conclusion, Escalate):
            self._escalate(rule_id, conclusion.kind, matched)
        elif isinstance(conclusion, Suggest):
            return self._suggest(rule_id, conclusion, fact)
        elif isinstance(conclusion, Judge):
            return self._judge(rule_id, conclusion, fact)
        elif isinstance(conclusion, Recommend):
            self._recommend(rule_id, conclusion, fact)
        return None

    def _points(self, rule_id: str, c: Points, ind: dict[str, Any]) -> None:
        self.score += c.points
        self.area_scores[ind["area"]] += c.points
        recency = _RECENCY[ind["recency"]]
        reason = f"{ind['kind']} indicator '{self._label(ind['code'])}' ({recency}): +{c.points}"
        self._fire(rule_id, reason, ind["code"], points=c.points)

    def _level(self, rule_id: str, c: Level, fact: dict[str, Any]) -> None:
        self.level_ranks.append(c.level.rank)
        if c.band is not None:
            self.band_level = c.level
            reason = f"score {fact['score']} is in the {c.level} band ({_band_text(*c.band)})"
            self._fire(rule_id, reason, level=c.level)
        elif fact["t"] == Fact.indicator:
            code = fact["code"]
            reason = (
                f"{c.description}: '{self._label(code)}' ({code}, "
                f"{_RECENCY[fact['recency']]}): {c.level}"
            )
            self._fire(rule_id, reason, code, level=c.level)
        elif fact["t"] == Fact.area:
            reason = (
                f"area '{_area_name(fact['area'])}' scores {fact['score']}, its maximum: "
                f"{c.description}, so at least {c.level}"
            )
            self._fire(rule_id, reason, fact["area"], level=c.level)
        else:
            reason = f"the child is {fact['age']}: {c.description}, so at least {c.level}"
            self._fire(rule_id, reason, level=c.level)

    def _suggest(self, rule_id: str, c: Suggest, levels: dict[str, Any]) -> list[dict[str, Any]]:
        self.suggested = c.level
        reason = (
            f"suggested level {c.level}: the highest level given by the band and by any floor "
            "or override that applies"
        )
        self._fire(rule_id, reason, level=c.level)
        return [
            {
                "t": Fact.suggested,
                "level": c.level,
                "referrer": levels["referrer"],
                "rationale": levels["rationale"],
                "repeat_missing": levels["repeat_missing"],
            }
        ]

    def _judge(self, rule_id: str, c: Judge, fact: dict[str, Any]) -> list[dict[str, Any]]:
        suggested, referrer = _LEVEL[fact["level"]], _LEVEL[fact["referrer"]]
        working = _LEVEL[fact[c.working_from]]
        rationale: bool = fact["rationale"]
        self.working = working
        self.judgement = {
            "referrer_level": referrer,
            "suggested_level": suggested,
            "relation": c.relation,
            "rationale_given": rationale,
            "coordinator_review": c.coordinator_review,
        }
        with_or_without = "with" if rationale else "without"
        if c.relation is JudgementRelation.agrees:
            reason = f"the referrer's judgement ({referrer}) agrees with the suggestion"
        elif c.relation is JudgementRelation.above:
            reason = (
                f"the referrer judged {referrer}, above the suggested {suggested}, "
                f"{with_or_without} a rationale: the case proceeds at {referrer}"
            )
        elif c.coordinator_review:
            reason = (
                f"the referrer judged {referrer}, below the suggested {suggested}, "
                "without a rationale: flagged for the coordinator"
            )
        else:
            reason = (
                f"the referrer judged {referrer}, below the suggested {suggested}, "
                "with a rationale: kept beside the suggestion for the panel to decide"
            )
        self._fire(rule_id, reason, level=working)
        return [
            {
                "t": Fact.working,
                "level": working,
                "repeat_missing": fact["repeat_missing"],
                "review": c.coordinator_review,
            }
        ]

    def _recommend(self, rule_id: str, c: Recommend, fact: dict[str, Any]) -> None:
        self.recommendation = c.recommendation
        level = fact["level"]
        if c.because == "repeat_missing":
            reason = (
                f"{level} risk, but repeat missing episodes: consider at the next Pre-MSET "
                "even without an exploitation indicator"
            )
        elif c.recommendation is PreMsetRecommendation.consider_at_pre_mset:
            reason = f"{level} risk: consider at the next Pre-MSET"
        else:
            reason = f"{level} risk: advice back to the case holder"
        self._fire(rule_id, reason)

    def _escalate(self, rule_id: str, kind: EscalationKind, matched: list[dict[str, Any]]) -> None:
        inp, esc = self.inp, self.config.escalations
        fact = matched[0]
        subject: str | None = None
        due_at: datetime | None = None
        refs: dict[AgencyDesignation, str] = {}
        if kind is EscalationKind.child_protection:
            by_type = {f["t"]: f for f in matched}
            ind, case = by_type[Fact.indicator], by_type[Fact.case]
            code = ind["code"]
            reason = (
                f"a child aged {case['age']} with a sexual-activity indicator "
                f"'{self._label(code)}' ({code}): child-protection referral now"
            )
        elif kind is EscalationKind.repeat_missing:
            self.repeat_missing = True
            rm = esc.repeat_missing
            reason = (
                f"{fact['episodes_in_window']} missing episodes in the last {rm.within_days} "
                f"days ({rm.episodes} or more is repeat missing)"
            )
        elif kind is EscalationKind.rhi_not_offered:
            subject = fact["ref"]
            returned_at = self.episodes[subject].returned_at
            assert returned_at is not None
            due_at = returned_at + timedelta(hours=esc.rhi_not_offered.within_hours)
            reason = (
                f"no Return Home Interview offered {fact['hours_since_return']:.0f} hours after "
                f"the return (due within {esc.rhi_not_offered.within_hours} hours)"
            )
        elif kind is EscalationKind.missing_in_other_authority:
            subject = fact["ref"]
            where = self.episodes[subject].located_in_authority
            assert where is not None
            refs[AgencyDesignation.other_authority] = where
            reason = f"found while missing in {where}, outside {inp.local_authority}"
        elif kind in (EscalationKind.action_due_soon, EscalationKind.action_overdue):
            subject = fact["ref"]
            action = self.actions[subject]
            due_at = action.due_at
            refs[AgencyDesignation.action_owner] = str(action.owner_agency_id)
            hours = fact["hours_past_due"]
            if kind is EscalationKind.action_overdue:
                reason = f"action not completed and {hours:.0f} hours past its due time"
            else:
                reason = f"action due in {-hours:.0f} hours and not yet completed"
        elif kind is EscalationKind.reassessment_overdue:
            after = esc.reassessment_overdue.after_days
            assert inp.last_assessed_at is not None
            due_at = inp.last_assessed_at + timedelta(days=after)
            reason = (
                f"last assessed {fact['days_since_assessed']:.0f} days ago: the Risk "
                f"Assessment Tool is renewed at least every {after} days"
            )
        elif kind is EscalationKind.transition_to_adult_services:
            due_at = inp.as_of + timedelta(days=fact["days_until_18"])
            reason = (
                f"turns 18 in {inp.turns_18_month:%B %Y}: plan the transition to adult services"
            )
        elif kind is EscalationKind.high_risk:
            reason = (
                f"the case proceeds at {fact['level']} risk: an elevated risk needs an "
                "elevated response now, not at the next panel"
            )
        else:  # judgement_review
            reason = "the referrer's level is below the suggestion and no rationale was recorded"

        self._fire(rule_id, reason, subject)
        key = (kind, subject)
        if key in self.escalations:  # e.g. two sexual-activity indicators: one escalation
            self.escalations[key].reasons.append(reason)
        else:
            self.escalations[key] = _Escalation(kind, rule_id, subject, [reason], due_at, refs)

    # --- result --------------------------------------------------------------------------

    def _escalation(self, e: _Escalation) -> dict[str, Any]:
        cfg = self.config.escalations.get(e.kind)
        la = self.inp.local_authority
        default_refs = {
            AgencyDesignation.local_authority: la,
            AgencyDesignation.rhi_provider: la,
        }
        notify = [
            {
                "role": t.role,
                "agency": t.agency,
                "agency_ref": e.agency_refs.get(t.agency, default_refs.get(t.agency)),
            }
            for t in cfg.notify
        ]
        deadline = (
            self.inp.as_of + timedelta(hours=cfg.respond_within_hours)
            if cfg.respond_within_hours is not None
            else None
        )
        return {
            "kind": e.kind,
            "urgency": cfg.urgency,
            "notify": notify,
            "reason": "; ".join(sorted(e.reasons)),
            "rule": e.rule,
            "subject": e.subject,
            "due_at": e.due_at,
            "deadline": deadline,
        }

    def _next_checks(self) -> list[dict[str, Any]]:
        inp, esc = self.inp, self.config.escalations
        now = inp.as_of
        checks: list[dict[str, Any]] = []
        enabled = self.rs.enabled

        def add(kind: EscalationKind, at: datetime, subject: str | None = None) -> None:
            if kind in enabled and at > now:
                checks.append({"kind": kind, "at": at, "subject": subject})

        for e in inp.missing_episodes:
            if e.returned_at is not None and e.rhi_offered_at is None:
                at = e.returned_at + timedelta(hours=esc.rhi_not_offered.within_hours)
                add(EscalationKind.rhi_not_offered, at, e.episode_ref)
        for a in inp.actions:
            if not a.completed:
                soon = a.due_at - timedelta(hours=esc.action_due_soon.hours_before_due)
                add(EscalationKind.action_due_soon, soon, a.action_ref)
                late = a.due_at + timedelta(hours=esc.action_overdue.grace_hours)
                add(EscalationKind.action_overdue, late, a.action_ref)
        if inp.last_assessed_at is not None:
            at = inp.last_assessed_at + timedelta(days=esc.reassessment_overdue.after_days)
            add(EscalationKind.reassessment_overdue, at)
        warn_in = self.days_until_18 - esc.transition_to_adult_services.within_days
        add(EscalationKind.transition_to_adult_services, now + timedelta(days=warn_in))
        return sorted(checks, key=lambda c: (c["at"], _KIND_ORDER[c["kind"]], c["subject"] or ""))

    def result(self) -> TriageResult:
        version = self.rs.version
        if self.band_level is None or self.suggested is None:
            raise RulesEngineError(f"ruleset v{version} suggested no level for score {self.score}")
        if self.judgement is None or self.working is None or self.recommendation is None:
            raise RulesEngineError(f"ruleset v{version} drew no judgement or recommendation")
        escalations = sorted(
            (self._escalation(e) for e in self.escalations.values()),
            key=lambda e: (
                _URGENCY_ORDER[e["urgency"]],
                _KIND_ORDER[e["kind"]],
                e["subject"] or "",
            ),
        )
        fired = [f for _, f in sorted(self.fired, key=_first)]
        return TriageResult.model_validate(
            {
                "ruleset_version": version,
                "ruleset_name": self.rs.name,
                "as_of": self.inp.as_of,
                "score": self.score,
                "area_scores": dict(sorted(self.area_scores.items())),
                "band_level": self.band_level,
                "suggested_level": self.suggested,
                "referrer_level": self.inp.referrer_level,
                "level": self.working,
                "judgement": self.judgement,
                "recommendation": self.recommendation,
                "escalations": escalations,
                "fired": fired,
                "timers": self.rs.timers,
                "next_checks": self._next_checks(),
            }
        )

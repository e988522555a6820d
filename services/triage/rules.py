"""Builds the durable-rules ruleset of one rules version from its configuration.

Every decision of triage is a rule here: which points an indicator scores, which band a score
falls in, which floors and overrides apply, how the suggested level is resolved, how the
referrer's judgement compares, what is recommended and which escalations fire. A rule is a
durable-rules condition (written with ``durable.lang``'s ``m`` and ``item``) plus the
conclusion it draws; ``domain.py`` only prepares facts and records conclusions.

Evaluation runs in three stages over one session (see ``domain.py``):

1. facts about the case as given: indicators, the case, missing episodes, actions;
2. facts the first stage's conclusions add up to: the total score and each area's score;
3. the levels every band, floor and override concluded, from which rules resolve the
   suggested level, then (forward chaining: a rule's conclusion is asserted as a new fact)
   the judgement, the working level, the recommendation and the level-based escalations.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Any, Final

from durable.lang import item, m

from mset_contract.triage import (
    EscalationKind,
    JudgementRelation,
    PreMsetRecommendation,
    ruleset_name,
)
from mset_contract.vocab import IndicatorKind, Recency, RiskLevel
from services.triage.ruleset_config import IndicatorMatch, RulesetConfig


class Fact:
    """The ``t`` (type) field of every fact asserted into a triage session. Plain strings,
    not an enum: they are read on every fact of every evaluation."""

    indicator: Final = "ind"
    case: Final = "case"
    episode: Final = "episode"
    action: Final = "action"
    score: Final = "score"
    area: Final = "area"
    levels: Final = "levels"
    suggested: Final = "suggested"
    working: Final = "working"


# --- conclusions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Points:
    """The matched indicator scores ``points``."""

    points: int


@dataclass(frozen=True)
class Level:
    """The level cannot be below ``level`` (a band, floor or override)."""

    level: RiskLevel
    source: str  # "band", "floor" or "override"
    description: str
    band: tuple[int, int | None] | None = None


@dataclass(frozen=True)
class Suggest:
    """The suggested level is ``level``; asserted as a ``suggested`` fact."""

    level: RiskLevel


@dataclass(frozen=True)
class Judge:
    """How the referrer's level compares; asserts the ``working`` fact, whose level is the
    matched fact's ``working_from`` field (the suggestion, or the referrer's level)."""

    relation: JudgementRelation
    working_from: str
    coordinator_review: bool


@dataclass(frozen=True)
class Recommend:
    recommendation: PreMsetRecommendation
    because: str


@dataclass(frozen=True)
class Escalate:
    kind: EscalationKind


Conclusion = Points | Level | Suggest | Judge | Recommend | Escalate


# The order explanations are listed in: points, band, floors and overrides, suggestion,
# judgement, recommendation, escalations; then the order the rules were declared in.
_READING_ORDER = {Points: 0, Level: 2, Suggest: 3, Judge: 4, Recommend: 5, Escalate: 6}


@dataclass(frozen=True)
class Rule:
    id: str
    stage: int
    order: int
    conclusion: Conclusion
    position: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        c = self.conclusion
        group = 1 if isinstance(c, Level) and c.band else _READING_ORDER[type(c)]
        object.__setattr__(self, "position", (group, self.order))


@dataclass
class CompiledRuleset:
    """A rules version ready to load into the engine: durable-rules JSON plus what each rule
    concludes (durable-rules hands back the rule's name and the facts it matched)."""

    version: str
    name: str
    config: RulesetConfig
    definition: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read on every evaluation: worked out once.
        self.timers = self.config.timers()
        self.enabled = frozenset(
            k for k in EscalationKind if self.config.escalations.get(k).enabled
        )

    def add(self, rule_id: str, stage: int, conclusion: Conclusion, *conditions: Any) -> None:
        """``conditions``: one ``m`` expression, or ``(alias, expression)`` pairs for a join."""
        if rule_id in self.rules:
            raise ValueError(f"duplicate rule id {rule_id}")
        if len(conditions) == 1 and not isinstance(conditions[0], tuple):
            clauses = [{"m": conditions[0].define()}]
        else:
            clauses = [{alias: expr.define()} for alias, expr in conditions]
        self.definition[rule_id] = {"all": clauses}
        self.rules[rule_id] = Rule(rule_id, stage, len(self.rules), conclusion)


def _fact(kind: str) -> Any:
    return m.t == kind


def _one_of(attr: str, values: list[Any]) -> Any:
    """``m.<attr>`` equals one of ``values`` (durable-rules has no 'in')."""
    return functools.reduce(operator.or_, [getattr(m, attr) == v for v in values])


def _indicator_match(match: IndicatorMatch) -> Any:
    alternatives = [m.area == a.value for a in match.areas] + [m.code == c for c in match.codes]
    cond = _fact(Fact.indicator) & functools.reduce(operator.or_, alternatives)
    if match.kinds:
        cond = cond & _one_of("kind", [k.value for k in match.kinds])
    if match.recencies:
        cond = cond & _one_of("recency", [r.value for r in match.recencies])
    return cond


def _pairs(relation: JudgementRelation) -> Any:
    """(suggested, referrer) level pairs standing in ``relation``, as one condition."""
    test = {
        JudgementRelation.agrees: operator.eq,
        JudgementRelation.above: operator.gt,
        JudgementRelation.below: operator.lt,
    }[relation]
    pairs = [
        (m.level == s.value) & (m.referrer == r.value)
        for s in RiskLevel
        for r in RiskLevel
        if test(r.rank, s.rank)
    ]
    return functools.reduce(operator.or_, pairs)


def compile_ruleset(config: RulesetConfig) -> CompiledRuleset:
    rs = CompiledRuleset(config.version, ruleset_name(config.version), config)
    esc = config.escalations

    # Stage 1: facts as given. ------------------------------------------------------------
    for kind in IndicatorKind:
        for recency in Recency:
            points = config.weights.for_kind(kind).for_recency(recency)
            rs.add(
                f"score.{kind.value}.{recency.value}",
                1,
                Points(points),
                _fact(Fact.indicator) & (m.kind == kind.value) & (m.recency == recency.value),
            )
    for ov in config.overrides:
        rs.add(
            f"override.{ov.name}",
            1,
            Level(ov.level, "override", ov.description),
            _indicator_match(ov),
        )
    if (young := config.floors.young_child) is not None:
        rs.add(
            "floor.young_child",
            1,
            Level(young.level, "floor", young.description),
            _fact(Fact.case) & (m.age < young.under_age),
        )
    if (cp := esc.child_protection).enabled:
        rs.add(
            "escalate.child_protection",
            1,
            Escalate(EscalationKind.child_protection),
            ("ind", _indicator_match(cp)),
            ("case", _fact(Fact.case) & (m.age < cp.under_age)),
        )
    if (rm := esc.repeat_missing).enabled:
        rs.add(
            "escalate.repeat_missing",
            1,
            Escalate(EscalationKind.repeat_missing),
            _fact(Fact.case) & (m.episodes_in_window >= rm.episodes),
        )
    if (rhi := esc.rhi_not_offered).enabled:
        rs.add(
            "escalate.rhi_not_offered",
            1,
            Escalate(EscalationKind.rhi_not_offered),
            _fact(Fact.episode)
            & (m.returned == True)  # noqa: E712 - a durable-rules condition, not a Python test
            & (m.rhi_offered == False)  # noqa: E712
            & (m.hours_since_return >= rhi.within_hours)
            & (m.hours_since_return < rhi.look_back_days * 24),
        )
    if (away := esc.missing_in_other_authority).enabled:
        rs.add(
            "escalate.missing_in_other_authority",
            1,
            Escalate(EscalationKind.missing_in_other_authority),
            _fact(Fact.episode)
            & (m.other_authority == True)  # noqa: E712
            & (m.days_since_reported <= away.look_back_days),
        )
    if (soon := esc.action_due_soon).enabled:
        rs.add(
            "escalate.action_due_soon",
            1,
            Escalate(EscalationKind.action_due_soon),
            _fact(Fact.action)
            & (m.completed == False)  # noqa: E712
            & (m.hours_past_due < 0)
            & (m.hours_past_due >= -soon.hours_before_due),
        )
    if (late := esc.action_overdue).enabled:
        rs.add(
            "escalate.action_overdue",
            1,
            Escalate(EscalationKind.action_overdue),
            _fact(Fact.action)
            & (m.completed == False)  # noqa: E712
            & (m.hours_past_due >= late.grace_hours),
        )
    if (re := esc.reassessment_overdue).enabled:
        rs.add(
            "escalate.reassessment_overdue",
            1,
            Escalate(EscalationKind.reassessment_overdue),
            _fact(Fact.case) & (m.days_since_assessed >= re.after_days),
        )
    if (tr := esc.transition_to_adult_services).enabled:
        rs.add(
            "escalate.transition_to_adult_services",
            1,
            Escalate(EscalationKind.transition_to_adult_services),
            _fact(Fact.case) & (m.days_until_18 >= 0) & (m.days_until_18 <= tr.within_days),
        )

    # Stage 2: the score and each area's score. --------------------------------------------
    for n, band in enumerate(config.bands):
        low, high = config.band_range(n)
        cond = _fact(Fact.score) & (m.score >= low)
        if high is not None:
            cond = cond & (m.score < high)
        rs.add(
            f"band.{band.level.value}",
            2,
            Level(band.level, "band", f"{band.level.value} band", (low, high)),
            cond,
        )
    if (area_max := config.floors.area_maximum) is not None:
        rs.add(
            "floor.area_maximum",
            2,
            Level(area_max.level, "floor", area_max.description),
            _fact(Fact.area) & (m.score >= area_max.min_area_score),
        )

    # Stage 3: resolve the level, weigh the judgement, recommend, escalate. ---------------
    for level in RiskLevel:
        # The highest level any band, floor or override concluded.
        rs.add(
            f"suggest.{level.value}",
            3,
            Suggest(level),
            _fact(Fact.levels)
            & m.ranks.anyItem(item == level.rank)
            & m.ranks.allItems(item <= level.rank),
        )
    suggested = _fact(Fact.suggested)
    rs.add(
        "judgement.agrees",
        3,
        Judge(JudgementRelation.agrees, "level", False),
        suggested & _pairs(JudgementRelation.agrees),
    )
    # A higher judgement is honoured: an elevated risk needs an elevated response.
    rs.add(
        "judgement.above",
        3,
        Judge(JudgementRelation.above, "referrer", False),
        suggested & _pairs(JudgementRelation.above),
    )
    # A lower one is kept beside the suggestion for the panel, which decides; without a
    # rationale the coordinator is asked to look.
    rs.add(
        "judgement.below_with_rationale",
        3,
        Judge(JudgementRelation.below, "level", False),
        suggested & _pairs(JudgementRelation.below) & (m.rationale == True),  # noqa: E712
    )
    rs.add(
        "judgement.below_without_rationale",
        3,
        Judge(JudgementRelation.below, "level", True),
        suggested & _pairs(JudgementRelation.below) & (m.rationale == False),  # noqa: E712
    )

    working = _fact(Fact.working)
    panel = [lv.value for lv in config.pre_mset.levels]
    others = [lv.value for lv in RiskLevel if lv.value not in panel]
    rs.add(
        "recommend.pre_mset",
        3,
        Recommend(PreMsetRecommendation.consider_at_pre_mset, "level"),
        working & _one_of("level", panel),
    )
    if others:
        rs.add(
            "recommend.repeat_missing",
            3,
            Recommend(PreMsetRecommendation.consider_at_pre_mset, "repeat_missing"),
            working & _one_of("level", others) & (m.repeat_missing == True),  # noqa: E712
        )
        rs.add(
            "recommend.advice",
            3,
            Recommend(PreMsetRecommendation.advice_to_case_holder, "level"),
            working & _one_of("level", others) & (m.repeat_missing == False),  # noqa: E712
        )
    if (hr := esc.high_risk).enabled:
        rs.add(
            "escalate.high_risk",
            3,
            Escalate(EscalationKind.high_risk),
            working & _one_of("level", [lv.value for lv in hr.levels]),
        )
    if esc.judgement_review.enabled:
        rs.add(
            "escalate.judgement_review",
            3,
            Escalate(EscalationKind.judgement_review),
            working & (m.review == True),  # noqa: E712
        )
    return rs

"""Rules as versioned configuration: checked at start-up, a new version a new ruleset, an old
version still there to re-run a past decision."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mset_contract.triage import EscalationKind
from mset_contract.vocab import RiskLevel
from services.triage.domain import Triage, UnknownRulesetVersion
from services.triage.examples import case
from services.triage.ruleset_config import (
    RulesetConfigError,
    load_ruleset_file,
    load_rulesets,
    packaged_rulesets_dir,
)

pytestmark = pytest.mark.unit

V1 = (packaged_rulesets_dir() / "v1.toml").read_text(encoding="utf-8")


def _edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def _write(directory: Path, version: str, text: str) -> Path:
    path = directory / f"v{version}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_rules_load() -> None:
    configs = load_rulesets(packaged_rulesets_dir())
    assert list(configs) == ["1"]
    v1 = configs["1"]
    assert [b.min_score for b in v1.bands] == [0, 6, 11]
    assert v1.weights.significant.current == 5
    assert v1.escalations.repeat_missing.episodes == 3


REPEAT_NOTIFY = (
    'notify = [{ role = "coordinator", agency = "local_authority" }]\n\n[escalations.rhi'
)
BAD_FILES = [
    ("band not from 0", ("min_score = 0", "min_score = 1"), "bands: the first band must start"),
    ("bands out of order", ("min_score = 6", "min_score = 0"), "bands: medium starts at 0"),
    (
        "misspelt setting",
        ("[weights.significant]\ncurrent = 5", "[weights.significant]\ncurent = 5"),
        "weights.significant.curent: unknown setting",
    ),
    ("negative weight", ("current = 1", "current = -1"), "weights.vulnerability.current"),
    (
        "unknown level",
        ('under_age = 13\nlevel = "medium"', 'under_age = 13\nlevel = "severe"'),
        "floors.young_child.level",
    ),
    ("unknown code", ('codes = ["SXH-03"]', 'codes = ["SXH-99"]'), "overrides.1: codes not in"),
    (
        "target that cannot be known",
        ('{ role = "manager", agency = "referring_agency" },', '{ agency = "action_owner" },'),
        "escalations.high_risk: notify.0: agency action_owner cannot be known here",
    ),
    ("wrong version", ('version = "1"', 'version = "2"'), "the file name says '1'"),
    ("not TOML", ("[pre_mset]", "[pre_mset"), "not valid TOML"),
    (
        "look-back shorter than the deadline",
        ("within_hours = 72\nlook_back_days = 28", "within_hours = 72\nlook_back_days = 3"),
        "escalations.rhi_not_offered: look_back_days must be longer than within_hours",
    ),
    (
        "no one to tell",
        (
            REPEAT_NOTIFY,
            REPEAT_NOTIFY.replace('{ role = "coordinator", agency = "local_authority" }', ""),
        ),
        "escalations.repeat_missing.notify: List should have at least 1 item",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_a_bad_file_refuses_to_load_naming_the_problem(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, "1", _edit(V1, *edit))
    with pytest.raises(RulesetConfigError, match=re.escape(message)) as err:
        load_ruleset_file(path)
    assert str(path) in str(err.value)


def test_a_directory_without_rules_refuses(tmp_path: Path) -> None:
    with pytest.raises(RulesetConfigError, match="no rules files"):
        load_rulesets(tmp_path)
    with pytest.raises(RulesetConfigError, match="does not exist"):
        load_rulesets(tmp_path / "missing")
    _write(tmp_path, "1", V1)
    with pytest.raises(RulesetConfigError, match="default ruleset version '3' has no rules"):
        Triage.from_directory(tmp_path, "3")


def test_a_new_version_is_a_new_ruleset_and_the_old_one_stays(tmp_path: Path) -> None:
    _write(tmp_path, "1", V1)
    # Version 2: medium from 4 points, and repeat missing switched off.
    v2 = _edit(V1, 'version = "1"', 'version = "2"')
    v2 = _edit(v2, "min_score = 6", "min_score = 4")
    off = "[escalations.repeat_missing]\nenabled = false\n"
    v2 = _edit(v2, "[escalations.repeat_missing]\n", off)
    _write(tmp_path, "2", v2)
    triage = Triage.from_directory(tmp_path, "2")
    try:
        assert triage.host.names() == ["mset_triage_v1", "mset_triage_v2"]
        infos = {i.version: i for i in triage.versions()}
        assert infos["2"].default and not infos["1"].default
        assert infos["2"].timers.repeat_missing_episodes is None
        assert infos["1"].timers.repeat_missing_episodes == 3

        inp = case("MIS-01", "PRE-02", "EDU-02", "SUB-02")  # 4 points
        now = triage.evaluate(inp)
        assert (now.ruleset_version, now.ruleset_name) == ("2", "mset_triage_v2")
        assert now.suggested_level is RiskLevel.medium
        audit = triage.evaluate(inp.model_copy(update={"ruleset_version": "1"}))
        assert (audit.ruleset_version, audit.suggested_level) == ("1", RiskLevel.low)

        with pytest.raises(UnknownRulesetVersion, match="known: 1, 2"):
            triage.evaluate(inp.model_copy(update={"ruleset_version": "9"}))
    finally:
        triage.close()


def test_a_switched_off_escalation_has_no_rule(tmp_path: Path) -> None:
    text = _edit(V1, "[escalations.high_risk]\n", "[escalations.high_risk]\nenabled = false\n")
    _write(tmp_path, "1", text)
    triage = Triage.from_directory(tmp_path, "1")
    try:
        assert "escalate.high_risk" not in triage.ruleset().rules
        result = triage.evaluate(case("TRF-01"))
        assert result.level is RiskLevel.high
        assert EscalationKind.high_risk not in {e.kind for e in result.escalations}
        assert result.timers.high_risk_response_hours is None
    finally:
        triage.close()

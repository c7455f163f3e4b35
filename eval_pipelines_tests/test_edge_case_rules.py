"""Failure-mode rules: the default rules on a hand-written frame, first match wins, operators, config validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_pipelines.config import ConfigError, parse_settings
from eval_pipelines.edge_cases.rules import classify, condition_mask, rule_columns
from eval_pipelines.edge_cases.settings import ColumnCondition, EdgeCaseConfig, FailureModeRule
from eval_pipelines.labeling.labels import FAILURE_TAGS

N = None
# user_action, confidence, correctness, raised tags -> expected failure mode under the default rules
ROWS = [
    ("overridden", 0.93, "wrong", {"override"}, "overridden_high_confidence"),
    ("overridden", 0.79, "wrong", {"override"}, N),  # not confident enough
    ("overridden", np.nan, "wrong", {"override"}, N),  # unknown confidence is not high
    ("accepted", 0.9, "correct", {"complaint"}, "complaint_after_acceptance"),
    ("edited", 0.9, "partly_wrong", {"edit", "complaint"}, N),  # complaint, but not after acceptance
    ("accepted", 0.9, "wrong", set(), "accepted_but_wrong"),
    ("accepted", 0.9, "wrong", {"compliance", "complaint"}, "compliance_flag"),  # first rule wins
    (N, np.nan, "unknown", {"timeout"}, "timeout"),
    ("rejected", 0.4, "wrong", {"reject", "error", "low_confidence"}, "error"),
    ("overridden", 0.95, "wrong", {"override", "timeout"}, "overridden_high_confidence"),  # order: before timeout
    ("accepted", 0.99, "correct", set(), N),
]


def frame(rows: list[tuple]) -> pd.DataFrame:
    data = pd.DataFrame({
        "user_action": pd.array([r[0] for r in rows], dtype="str"),
        "confidence": [r[1] for r in rows],
        "correctness": pd.array([r[2] for r in rows], dtype="str"),
        "channel": ["email", "chat", None, "email", "chat", "email", "chat", "email", "chat", "email", "chat",
                    "chat"][: len(rows)],
    })
    for tag in FAILURE_TAGS:
        data[f"tag_{tag}"] = [tag in r[3] for r in rows]
    return data


def test_default_rules_classify_the_fixture():
    cases = frame(ROWS)
    got = classify(cases, EdgeCaseConfig())
    assert [None if pd.isna(v) else v for v in got] == [r[4] for r in ROWS]


def test_operators_and_nulls():
    cases = frame(ROWS)

    def check(op: str, value: object, column: str = "confidence") -> list[bool]:
        return condition_mask(cases, ColumnCondition(column=column, op=op, value=value)).tolist()

    conf = cases["confidence"].to_numpy()
    assert check("ge", 0.9) == [bool(c >= 0.9) for c in conf]  # NaN compares False
    assert check("lt", 0.5) == [bool(c < 0.5) for c in conf]
    assert check("is_null", None) == [bool(np.isnan(c)) for c in conf]
    assert check("eq", "email", "channel")[:3] == [True, False, False]
    assert check("ne", "email", "channel")[:3] == [False, True, False]  # null is neither equal nor unequal
    assert check("in", ["chat", "phone"], "channel")[:3] == [False, True, False]
    assert check("not_in", ["chat"], "channel")[:3] == [True, False, False]
    assert check("not_null", None, "user_action")[7] is False
    with pytest.raises(KeyError, match="not in labeled_cases"):
        check("eq", "x", "no_such_column")


def test_custom_rules_and_columns_read():
    config = EdgeCaseConfig(rules=[
        FailureModeRule(category="chat_low_conf", tags_any=["low_confidence", "timeout"], tags_none=["reject"],
                        where=[ColumnCondition(column="channel", op="eq", value="chat")]),
    ])
    got = classify(frame(ROWS), config)
    assert got.notna().sum() == 0  # the only low-confidence row is a rejected one; the timeout is on email
    rows = [*ROWS, ("edited", 0.3, "partly_wrong", {"edit", "low_confidence"}, N)]
    got = classify(frame(rows), config)
    assert got.iloc[-1] == "chat_low_conf" and got.notna().sum() == 1
    assert rule_columns(config.rules) == ["tag_low_confidence", "tag_timeout", "tag_reject", "channel"]


def test_rule_config_is_validated_with_its_path():
    bad = [
        ({"rules": [{"category": "Bad Name", "tags_all": ["error"]}]}, "edge_cases.rules.0.category"),
        ({"rules": [{"category": "x", "tags_all": ["nope"]}]}, "edge_cases.rules.0.tags_all"),
        ({"rules": [{"category": "x"}]}, "edge_cases.rules.0"),  # no positive condition: would match everything
        ({"rules": [{"category": "x", "where": [{"column": "confidence", "op": "ge", "value": "high"}]}]},
         "edge_cases.rules.0.where.0"),
        ({"rules": [{"category": "x", "where": [{"column": "c", "op": "in", "value": "a"}]}]},
         "edge_cases.rules.0.where.0"),
        ({"rules": [{"category": "x", "tags_all": ["error"]}, {"category": "x", "tags_all": ["timeout"]}]},
         "edge_cases.rules"),
        ({"dedup": {"num_perm": 100, "bands": 32}}, "edge_cases.dedup"),
        ({"dedup": {"threshold": 0}}, "edge_cases.dedup.threshold"),
        ({"dedup": {"method": "simhash"}}, "edge_cases.dedup.method"),
    ]
    for section, path in bad:
        with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
            parse_settings({"edge_cases": section})
    assert parse_settings({}).edge_cases == EdgeCaseConfig()
    assert [rule.category for rule in EdgeCaseConfig().rules] == [
        "compliance_flag", "complaint_after_acceptance", "accepted_but_wrong", "overridden_high_confidence",
        "timeout", "error"]

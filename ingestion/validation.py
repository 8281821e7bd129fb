"""Row validation with rules from configuration, evaluated a column at a time (no loop per row).

A rule file (`ingestion/rules/<table>.yml`) names the expected columns and a list of rules, each a
`check` applied to one `column`. Reasons name the column and the rule, never the value: values of
identifying fields must not reach logs or error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

RULES_DIR = Path(__file__).parent / "rules"


@dataclass(frozen=True)
class Rule:
    name: str
    check: str
    column: str
    options: dict


@dataclass(frozen=True)
class RuleSet:
    source: str
    columns: list[str]
    rules: list[Rule]


@dataclass(frozen=True)
class Validated:
    valid: pd.DataFrame
    rejected: pd.DataFrame  # the rejected rows, plus `_rule` and `_reason`


def load_rules(name: str) -> RuleSet:
    spec = yaml.safe_load((RULES_DIR / f"{name}.yml").read_text())
    rules = [
        Rule(
            name=rule["name"],
            check=rule["check"],
            column=rule["column"],
            options={k: v for k, v in rule.items() if k not in ("name", "check", "column")},
        )
        for rule in spec["rules"]
    ]
    return RuleSet(source=spec["source"], columns=spec["columns"], rules=rules)


@cache
def _icd10cm_codes() -> frozenset[str]:
    import simple_icd_10_cm as cm

    return frozenset(code for code in cm.get_all_codes(True) if cm.is_category_or_subcategory(code))


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("string").str.strip() == "")


def _required(values: pd.Series, rule: Rule) -> tuple[pd.Series, str]:
    return _blank(values), f"{rule.column} is empty"


def _date(values: pd.Series, rule: Rule) -> tuple[pd.Series, str]:
    fmt = rule.options["format"]
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    return parsed.isna() & ~_blank(values), f"{rule.column} is not a date in the form {fmt}"


def _pattern(values: pd.Series, rule: Rule) -> tuple[pd.Series, str]:
    matches = values.astype("string").str.fullmatch(rule.options["pattern"]).fillna(False)
    return ~matches.astype(bool) & ~_blank(values), f"{rule.column} does not match its format"


def _icd10cm(values: pd.Series, rule: Rule) -> tuple[pd.Series, str]:
    known = values.isin(_icd10cm_codes())
    return ~known & ~_blank(values), f"{rule.column} is not an ICD-10-CM code"


CHECKS: dict[str, Callable[[pd.Series, Rule], tuple[pd.Series, str]]] = {
    "required": _required,
    "date": _date,
    "pattern": _pattern,
    "icd10cm": _icd10cm,
}


def missing_columns(frame: pd.DataFrame, rules: RuleSet) -> list[str]:
    return [column for column in rules.columns if column not in frame.columns]


def validate(frame: pd.DataFrame, rules: RuleSet) -> Validated:
    """Split `frame` into rows that pass every rule and rows that break one, with the reasons."""
    first_rule = pd.Series(pd.NA, index=frame.index, dtype="string")
    reasons = pd.Series("", index=frame.index, dtype="string")
    for rule in rules.rules:
        failed, reason = CHECKS[rule.check](frame[rule.column], rule)
        first_rule = first_rule.mask(failed & first_rule.isna(), rule.name)
        reasons = reasons.mask(failed, reasons + f"{rule.name}: {reason}; ")
    broken = first_rule.notna()
    rejected = frame[broken].copy()
    rejected["_rule"] = first_rule[broken]
    rejected["_reason"] = reasons[broken].str.rstrip("; ")
    return Validated(valid=frame[~broken].copy(), rejected=rejected)

#!/usr/bin/env python3
"""Holds the labels of tests/data/json_schema_cases.json to a JSON Schema
validator: every "valid" instance is JSON that the schema accepts, every
"invalid" one is not JSON or is JSON the schema refuses, and every
"valid_but_refused" one (optional) is JSON the schema accepts but the
grammar's spelling does not (members out of the schema's order, 5.0 for an
integer, whitespace over the bound, an escape where the character is plain).
test_json_schema.c holds the converter's grammars to the same labels: the
first matched, the others not.

Needs python3-jsonschema (Debian; run by /usr/bin/python3 when the python3
first on the PATH lacks it); exits 77 (skipped) without it. Formats are
checked too; "time" and "date-time" by RFC 3339's grammar here when the module
has no checker of its own for them.

usage: check_json_schema_cases.py CASES.json
"""
import json
import re
import sys

from debian_python import import_or_skip

jsonschema = import_or_skip("jsonschema")

TIME = r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([zZ]|[+-]([01]\d|2[0-3]):[0-5]\d)"
DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    validator_class = jsonschema.Draft202012Validator
    checker = validator_class.FORMAT_CHECKER
    if "time" not in checker.checkers:
        checker.checks("time")(lambda s: not isinstance(s, str) or re.fullmatch(TIME, s))
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(
            lambda s: not isinstance(s, str) or re.fullmatch(DATE + "[tT]" + TIME, s))
    bad = 0
    names = set()
    for case in cases:
        name = case["name"]
        if name in names:
            print(f"{name}: named twice")
            bad += 1
        names.add(name)
        validator_class.check_schema(case["schema"])
        validator = validator_class(case["schema"], format_checker=checker)
        for label in ("valid", "invalid", "valid_but_refused"):
            if label not in case and label == "valid_but_refused":
                continue
            if not case[label]:
                print(f"{name}: no {label} instances")
                bad += 1
            for text in case[label]:
                try:
                    instance = json.loads(text)
                    ok = validator.is_valid(instance)
                except ValueError:
                    ok = False
                if ok != (label != "invalid"):
                    print(f"{name}: {text!r} is labelled {label}, the validator says otherwise")
                    bad += 1
    print(f"{len(cases)} cases, {bad} wrong labels")
    return 1 if bad or len(cases) < 30 else 0


if __name__ == "__main__":
    sys.exit(main())

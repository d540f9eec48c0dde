"""Modules from Debian's packages (python3-yaml, python3-jsonschema) are for
Debian's interpreter, /usr/bin/python3, which may not be the python3 first on
the PATH (the one meson runs the tests with). And the one JSON Schema check
the tests share, by python3-jsonschema."""
import importlib
import json
import os
import sys

DEBIAN = "/usr/bin/python3"


def import_or_reexec(name):
    """The module `name`. When the running interpreter lacks it, the script runs
    again under Debian's (this call does not return then); None when that one
    lacks it too."""
    try:
        return importlib.import_module(name)
    except ImportError:
        pass
    if os.path.exists(DEBIAN) and os.path.realpath(sys.executable) != os.path.realpath(DEBIAN):
        os.execv(DEBIAN, [DEBIAN] + sys.argv)
    return None


def import_or_skip(name):
    """As import_or_reexec; when neither interpreter has the module, the test is
    skipped (exit status 77)."""
    module = import_or_reexec(name)
    if module is None:
        print(f"python3-{name} is not installed: skipped")
        sys.exit(77)
    return module


def schema_errors(schema, text):
    """What python3-jsonschema finds wrong with the JSON text under schema
    (formats checked): [] when nothing."""
    jsonschema = import_or_skip("jsonschema")
    try:
        value = json.loads(text)
    except ValueError as e:
        return [f"not JSON ({e})"]
    cls = jsonschema.validators.validator_for(schema)
    return [e.message for e in cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value)]

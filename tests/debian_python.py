"""Modules from Debian's packages (python3-yaml, python3-jsonschema) are for
Debian's interpreter, /usr/bin/python3, which may not be the python3 first on
the PATH (the one meson runs the tests with)."""
import importlib
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

"""``python tests/fake_cli.py ARGS``: the ``hwprofile`` command with the scripted fake runner registered as
``fake`` (hwprofile.runners._fake), for tests that must run hwprofile as a real process (signals, kills,
a full disk) without measuring a real model."""

import sys

from hwprofile.cli import main
from hwprofile.runners._fake import PATH
from hwprofile.runners._registry import register_runner

if __name__ == "__main__":
    register_runner("fake", PATH)
    raise SystemExit(main(sys.argv[1:]))

"""The YAML reader's start-up: PyYAML's NON_PRINTABLE class, seeded into `re`'s cache by archc.load.yaml_loader in a
cheaper form, matches exactly the code points PyYAML's own text does."""

from __future__ import annotations

import re
import subprocess
import sys

from archc.load import yaml_loader


def test_the_seeded_class_matches_the_same_code_points_as_pyyamls():
    every = "".join(map(chr, range(0x110000)))  # every code point, lone surrogates included
    ours = re.compile(yaml_loader._NON_PRINTABLE)
    theirs = re.compile(yaml_loader._YAML_NON_PRINTABLE, re.UNICODE)  # a key of its own: compiled, not the seed
    assert theirs.pattern == yaml_loader._YAML_NON_PRINTABLE and ours.pattern == yaml_loader._NON_PRINTABLE
    assert [m.start() for m in ours.finditer(every)] == [m.start() for m in theirs.finditer(every)]
    assert ours.flags == theirs.flags


def test_pyyamls_reader_gets_the_seeded_class_and_still_refuses_what_it_refused():
    code = ("import archc.load.yaml_loader as y, yaml, re\n"
            "print(yaml.reader.Reader.NON_PRINTABLE.pattern == y._NON_PRINTABLE)\n"
            "try:\n    yaml.safe_load('a: \\x07')\nexcept yaml.reader.ReaderError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "True", "unacceptable character #x0007: special characters are not allowed",
        '  in "<unicode string>", position 3']

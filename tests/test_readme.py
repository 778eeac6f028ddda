"""The README stays true: its flags table is the plugin's flag table."""

import os

from tb_plus.plugin import FLAGS

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_readme_lists_every_flag_with_its_default_and_help():
    text = open(README, encoding="utf-8").read()
    for name, default, _, help_ in FLAGS:
        assert f"| `--{name}` | `{default!s}` | {help_} |" in text, name

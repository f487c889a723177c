"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_python_example_in_the_readme_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})


def test_the_readme_opens_with_the_set_up_and_test_commands() -> None:
    first = re.search(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    assert first is not None
    lines = first.group(1).splitlines()
    assert lines[0].startswith("python -m pip install -e '.[dev]' && nbbs verify")
    assert lines[1].startswith("python -m pytest")

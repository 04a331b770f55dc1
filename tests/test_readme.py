"""README.md's tour runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README.read_text(), flags=re.S)
    assert blocks[0].strip().endswith("icrl-bench quickstart")
    assert blocks[1].strip().endswith("python -m pytest -q")
    assert all(b.count("\n") == 0 for b in blocks[:2])  # one copy-paste line each


def test_readme_tour_runs() -> None:
    code = re.findall(r"```python\n(.*?)\n```", README.read_text(), flags=re.S)[0]
    assert len(code.splitlines()) <= 10
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert len(namespace["new"]) == 8  # type: ignore[arg-type]
    assert namespace["venv"].num_envs == 16  # type: ignore[attr-defined]

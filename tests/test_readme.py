"""The README's commands and example are real."""

import pathlib
import re

import numpy as np

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_has_exactly_two_commands():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    demo = re.search(r"<!-- demo-command -->\n```bash\n(.*?)\n```", README).group(1)
    test = re.search(r"<!-- test-command -->\n```bash\n(.*?)\n```", README).group(1)
    assert "lossjax demo" in demo and "pip install" in demo
    assert "pytest" in test and '".[dev]"' in test
    assert demo in blocks[0] and test in blocks[1]


def test_readme_example_runs():
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert np.isfinite(float(namespace["loss"]))
    assert set(namespace["terms"]) == {"softmax_cross_entropy", "focal_loss"}
    assert float(namespace["loss"]) < 1.0  # it trained

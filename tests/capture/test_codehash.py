"""Code digests: Python by syntax tree, other files by bytes, local imports followed."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from keel.capture.codehash import MISSING, CodeHasher, python_digest

SOURCE = textwrap.dedent(
    """\
    import os
    from helper import scale


    def main(x):
        return scale(x) + 1
    """
)


def _later() -> int:
    """A clock 10 s ahead: every file is past the racy window."""
    return time.time_ns() + 10**10


def test_comments_and_layout_do_not_change_a_python_digest() -> None:
    edited = SOURCE.replace("import os", "import os  # the OS\n\n# a comment") + "\n\n# end\n"
    edited = edited.replace("return scale(x) + 1", "return scale( x )+1")
    assert python_digest(edited.encode())[0] == python_digest(SOURCE.encode())[0]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(("+ 1", "+ 2"), id="constant"),
        pytest.param(("def main(x)", "def main(y)"), id="name"),
        pytest.param(("import os\n", 'import os\n"""doc"""\n'), id="docstring"),
    ],
)
def test_a_change_to_what_the_code_does_changes_the_digest(edit: tuple[str, str]) -> None:
    changed = SOURCE.replace(*edit)
    assert python_digest(changed.encode())[0] != python_digest(SOURCE.encode())[0]


def test_a_source_that_does_not_parse_is_digested_by_its_bytes() -> None:
    digest, imports = python_digest(b"def broken(:\n")
    assert digest.startswith("blake3:") and imports == ()
    assert python_digest(b"def broken(:  \n")[0] != digest


def test_imports_anywhere_in_the_file_are_listed() -> None:
    source = textwrap.dedent(
        """\
        import a.b as ab
        from . import sibling
        from ..pkg.mod import thing, other
        def f():
            import late
        try:
            from optional import x
        except ImportError:
            pass
        """
    )
    imports = python_digest(source.encode())[1]
    assert (0, "a.b", ()) in imports
    assert (1, "", ("sibling",)) in imports
    assert (2, "pkg.mod", ("thing", "other")) in imports
    assert (0, "late", ()) in imports
    assert (0, "optional", ("x",)) in imports


def _project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_closure_follows_local_imports_transitively_and_ignores_installed_ones(
    tmp_path: Path,
) -> None:
    root = _project(
        tmp_path,
        {
            "train.py": "import json\nimport pkg.models\nfrom helper import scale\n",
            "helper.py": "from pkg import util\n",
            "pkg/__init__.py": "",
            "pkg/models.py": "from .layers import dense\n",
            "pkg/layers.py": "X = 1\n",
            "pkg/util.py": "Y = 2\n",
            "unused.py": "Z = 3\n",
        },
    )
    hasher = CodeHasher.open(root, None)
    found = hasher.closure([root / "train.py"], [root])
    assert sorted(found) == [
        "helper.py",
        "pkg/__init__.py",
        "pkg/layers.py",
        "pkg/models.py",
        "pkg/util.py",
        "train.py",
    ]


def test_module_files_include_each_package_init(tmp_path: Path) -> None:
    root = _project(tmp_path, {"a/__init__.py": "", "a/b/__init__.py": "", "a/b/c.py": ""})
    hasher = CodeHasher.open(root, None)
    assert [hasher.rel(p) for p in hasher.module_files("a.b.c", [root])] == [
        "a/__init__.py",
        "a/b/__init__.py",
        "a/b/c.py",
    ]
    assert hasher.module_files("numpy", [root]) == ()


def test_a_missing_entry_file_is_listed_as_missing(tmp_path: Path) -> None:
    hasher = CodeHasher.open(tmp_path, None)
    assert hasher.closure([tmp_path / "gone.py"], [tmp_path]) == {"gone.py": MISSING}


def test_folders_are_expanded_without_caches_or_hidden_tool_folders(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {"conf/a.yaml": "a", "conf/sub/b.yaml": "b", "conf/__pycache__/x.pyc": "", "c.txt": "c"},
    )
    hasher = CodeHasher.open(root, None)
    assert [hasher.rel(p) for p in hasher.expand("conf")] == ["conf/a.yaml", "conf/sub/b.yaml"]
    assert [hasher.rel(p) for p in hasher.expand("c.txt")] == ["c.txt"]


def test_an_unchanged_file_is_answered_from_the_cache_without_parsing(tmp_path: Path) -> None:
    root = _project(tmp_path, {"train.py": "import helper\n", "helper.py": "X = 1\n"})
    cache = tmp_path / "cache"
    first = CodeHasher.open(root, cache, now_ns=_later)
    found = first.closure([root / "train.py"], [root])
    first.save()
    second = CodeHasher.open(root, cache, now_ns=_later)
    assert second.closure([root / "train.py"], [root]) == found
    assert (first.parsed, second.parsed) == (2, 0)


def test_a_file_changed_in_the_racy_window_is_not_remembered(tmp_path: Path) -> None:
    root = _project(tmp_path, {"train.py": "X = 1\n"})
    cache = tmp_path / "cache"
    first = CodeHasher.open(root, cache)
    first.digest(root / "train.py")
    first.save()
    second = CodeHasher.open(root, cache)
    second.digest(root / "train.py")
    assert second.parsed == 1


def test_forget_drops_answers_so_an_edit_is_seen(tmp_path: Path) -> None:
    root = _project(tmp_path, {"train.py": "X = 1\n"})
    hasher = CodeHasher.open(root, None)
    before = hasher.digest(root / "train.py")
    (root / "train.py").write_text("X = 2\n")
    assert hasher.digest(root / "train.py") == before  # answered once per process
    hasher.forget()
    assert hasher.digest(root / "train.py") != before

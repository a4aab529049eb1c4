"""The public API is one import away, complete and sorted."""

from __future__ import annotations

import fogverse


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert fogverse.__all__ == sorted(fogverse.__all__)
    for name in fogverse.__all__:
        assert getattr(fogverse, name) is not None, name


def test_every_public_class_defined_in_the_package_root_is_exported() -> None:
    public = {
        name for name, value in vars(fogverse).items()
        if not name.startswith("_") and isinstance(value, type)
        and value.__module__.startswith("fogverse")
    }
    assert public <= set(fogverse.__all__)

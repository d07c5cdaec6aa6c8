"""The built course site for the browser tests: `$COURSE_SITE` (what `make site` built), or a
fresh build in a temporary folder."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    built = os.environ.get("COURSE_SITE")
    if built:
        path = Path(built).resolve()
        if not (path / "index.html").exists():
            pytest.fail(f"COURSE_SITE={built} has no index.html: build it with make site")
        return path
    sys.path.insert(0, str(ROOT / "tools"))
    import build_site

    path = tmp_path_factory.mktemp("site")
    build_site.build(path, log=lambda *_: None)
    return path

"""Driving the Streamlit app in tests (AppTest): signed in as an account, on a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def library_as(name: str, password: str) -> Any:
    """The app after ``name`` signed in with ``password``, on the Library page (``KB_SERVICE_URL`` set)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=60).run()
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    at.switch_page("views/library.py").run()
    assert not at.exception, at.exception
    return at

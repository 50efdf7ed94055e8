"""Test-model builders, reference implementations and corpus writers shared by the tests."""

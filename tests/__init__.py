"""zoomplan's tests, a package: test modules import shared helpers package-qualified,
``from tests.helpers.synth import ...``, ``from tests.conftest import tiny_card`` (see tests/helpers)."""

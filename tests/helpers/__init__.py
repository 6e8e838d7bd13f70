"""Helpers shared by the test folders: synthetic scenes and AOIs (:mod:`tests.helpers.synth`), inputs made
from the real scene in ../shared/data (:mod:`tests.helpers.realdata`), Landsat products
(:mod:`tests.helpers.landsat`). Import them package-qualified: ``from tests.helpers.synth import write_aoi``."""

"""Settings for a gunicorn subprocess serving the test database under a mount point
(tests/browser/test_mounted_site.py): the test settings, plus static files from the finders
(no collectstatic in tests) and the test process's MEDIA_ROOT, so kept copies are shared."""

from __future__ import annotations

import os
from pathlib import Path

from tests.settings import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(os.environ["TEST_MEDIA_ROOT"])

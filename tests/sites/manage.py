#!/usr/bin/env python
"""A site's manage.py (``DJANGO_SETTINGS_MODULE`` says which site)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.sites.site_sorl.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)

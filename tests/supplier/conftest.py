"""The built-in supplier's tests start servers with the API tests' `live_server` helper."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

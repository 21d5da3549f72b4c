"""A plugin that fails to import (for `segmentkit plugins` problem reporting)."""

raise RuntimeError("skbroken is broken on purpose")

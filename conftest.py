"""pytest runs every notebook in fast mode (COURSE.md section 8); kernels inherit these variables."""
import os

os.environ.setdefault("DEEPGEN_MODE", "fast")
os.environ.setdefault("DEEPGEN_PLAIN_PROGRESS", "1")

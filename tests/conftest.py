import os

# Figures render off-screen in tests, and TensorFlow's C++ start-up lines stay quiet.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

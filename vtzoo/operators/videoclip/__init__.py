"""VideoCLIP."""

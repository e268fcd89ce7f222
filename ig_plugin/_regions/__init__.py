"""XRAI's regions: the segments of an image (Felzenszwalb at PAIR's scales, or given), and their
greedy ranking by attribution density. numpy and scikit-image only, no TensorFlow."""

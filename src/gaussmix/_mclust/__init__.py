"""mclust's model-based clustering: hierarchical start, compiled EM, select."""

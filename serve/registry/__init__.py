"""The camera registry (#16): physical cameras and the photos that show them, merges and splits,
the public view (map, exports, statistics) and the comparison with the official list."""

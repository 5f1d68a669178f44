"""Plans of public operations run tiled (out of core) or sharded (over devices)."""

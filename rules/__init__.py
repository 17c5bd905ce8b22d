"""kerascheck's rules: one module per rule, named after the rule, found by scanning this package."""

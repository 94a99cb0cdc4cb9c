"""`ktlab compare`: strategies side by side at equal budgets (`comparison`, `budget`), judged by
paired tests (`significance`) in a report that says what it found (`report`)."""

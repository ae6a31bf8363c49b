"""Care schedules: low-altitude rest rotations and physical examinations (rules, texts,
items, reminders, records, areas)."""

"""Stage 5, tuning: MetaSchedule + XGBoost, with target-aware databases committed under schedules/."""

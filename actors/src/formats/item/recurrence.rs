//! Outlook's recurrence patterns (RecurrencePattern) against RFC 5545 §3.3.10 RRULEs
//! (placeholder until the mapping lands).

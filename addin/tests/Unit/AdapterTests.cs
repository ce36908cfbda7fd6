// The Outlook adapter against the stand-in: each class's property table round-trips, the special
// cases (zones, all-day, recurrence with exceptions, recipients, members, pictures), the link in
// named properties, folders per collection, and the order of object-model calls Outlook requires.
using System;
using System.Collections.Generic;
using System.Linq;
using NUnit.Framework;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Outlook;
using OpConnect.Outlook.Standin;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Tests
{
    [TestFixture]
    public class AdapterTests
    {
        Application app;
        OutlookAdapter adapter;

        [SetUp]
        public void SetUp()
        {
            app = new Application("W. Europe Standard Time");
            adapter = new OutlookAdapter(app) { AttachEvents = false };
        }

        string Folder(ItemClass family, string name = "Work")
        {
            return adapter.EnsureFolder(new FolderSpec { Key = "alice|/alice/" + name + "/|" + family, Account = "alice", Name = name, Family = family }, null);
        }

        Applied RoundTrip(ItemClass cls, Dictionary<string, object> fields, byte[] photo = null)
        {
            var family = cls == ItemClass.DistList ? ItemClass.Contact : cls;
            var remote = new RemoteItem { Href = "/alice/x/1", Etag = "\"1\"", Class = cls, Fields = fields, Photo = photo };
            var applied = adapter.Write(Folder(family), null, remote, new Link { Href = remote.Href, Etag = remote.Etag });
            var want = adapter.Normalize(cls, fields);
            Assert.AreEqual(Json.Canonical(want), Json.Canonical(applied.Fields), "read back as written");
            Assert.AreEqual(Json.Canonical(want), Json.Canonical(adapter.ReadFields(applied.EntryId)));
            return applied;
        }

        T Item<T>(Applied a) where T : class { return app.Session.GetItemFromID(a.EntryId) as T; }

        [Test]
        public void An_appointment_keeps_its_zone_and_wall_clock_time()
        {
            var a = RoundTrip(ItemClass.Appointment, Json.O("Subject", "Call with NY", "Location", "Phone", "Body", "Agenda:\n1. budget\n",
                "Categories", "Work, Blue", "BusyStatus", 3, "ReminderSet", true, "ReminderMinutesBeforeStart", 10, "Importance", 2, "Sensitivity", 2,
                "Start", "2026-12-02T09:00:00", "End", "2026-12-02T10:30:00", "StartTimeZone", "Eastern Standard Time", "EndTimeZone", "Eastern Standard Time",
                "GlobalUid", "ignored-read-only", "StartUTC", "2026-12-02T14:00:00Z"));
            var item = Item<AppointmentItem>(a);
            Assert.AreEqual(new DateTime(2026, 12, 2, 15, 0, 0), item.Start, "Outlook's Start is in the machine's zone (Berlin)");
            Assert.AreEqual("Agenda:\r\n1. budget", item.Body, "Outlook's newlines");
            Assert.AreEqual("/alice/x/1", item.Named("opconnect.href"));
            Assert.AreEqual(FieldSets.Hash(a.Fields), item.Named("opconnect.hash"));
        }

        [Test]
        public void Defaults_read_as_absent_keys()
        {
            var a = RoundTrip(ItemClass.Appointment, Json.O("Subject", "Plain", "Start", "2026-12-02T09:00:00", "End", "2026-12-02T09:30:00",
                "StartTimeZone", "UTC", "EndTimeZone", "UTC", "BusyStatus", 2, "Importance", 1, "Sensitivity", 0));
            CollectionAssert.AreEquivalent(new[] { "Subject", "Start", "End", "StartTimeZone", "EndTimeZone" }, a.Fields.Keys);
        }

        [Test]
        public void An_all_day_event_is_dates_without_a_zone()
        {
            var a = RoundTrip(ItemClass.Appointment, Json.O("Subject", "Holidays", "AllDayEvent", true, "Start", "2026-12-24", "End", "2026-12-27"));
            Assert.IsTrue(Item<AppointmentItem>(a).AllDayEvent);
            Assert.AreEqual(new DateTime(2026, 12, 24), Item<AppointmentItem>(a).Start);
        }

        [Test]
        public void A_series_with_exceptions_is_one_item_and_its_occurrences_follow_the_saved_master()
        {
            var a = RoundTrip(ItemClass.Appointment, Json.O("Subject", "Standup", "Start", "2026-12-07T09:00:00", "End", "2026-12-07T09:15:00",
                "StartTimeZone", "W. Europe Standard Time", "EndTimeZone", "W. Europe Standard Time",
                "Recurrence", Json.O("RecurrenceType", 1, "Interval", 1, "DayOfWeekMask", 2 | 8, "PatternStartDate", "2026-12-07", "Occurrences", 10, "NoEndDate", false),
                "Exceptions", new object[] {
                    Json.O("OriginalDate", "2026-12-09T09:00:00", "Deleted", true),
                    Json.O("OriginalDate", "2026-12-14T09:00:00", "Deleted", false, "Subject", "Standup (moved)", "Start", "2026-12-14T11:00:00", "End", "2026-12-14T11:15:00"),
                }));
            var item = Item<AppointmentItem>(a);
            Assert.IsTrue(item.IsRecurring);
            Assert.AreEqual(1, app.AllItems().Count, "one series, not one item per occurrence");
            var exceptions = (object[])a.Fields["Exceptions"];
            Assert.AreEqual(2, exceptions.Length);
            Assert.AreEqual("2026-12-14T11:00:00", Json.Str((Dictionary<string, object>)exceptions[1], "Start"));
            Assert.AreEqual(10L, Json.Obj(a.Fields, "Recurrence")["Occurrences"]);
            var calls = app.Calls;
            int firstSave = calls.IndexOf("Save");
            int firstOccurrence = calls.IndexOf("GetOccurrence");
            Assert.Greater(firstOccurrence, firstSave, "GetOccurrence needs a saved master");
            Assert.Less(calls.IndexOf("GetRecurrencePattern"), firstSave, "the pattern is set before the first save");
        }

        [Test]
        public void An_occurrence_that_only_ends_later_keeps_its_times()
        {
            var a = RoundTrip(ItemClass.Appointment, Json.O("Subject", "Standup", "Start", "2026-12-07T09:00:00", "End", "2026-12-07T09:15:00",
                "StartTimeZone", "UTC", "EndTimeZone", "UTC",
                "Recurrence", Json.O("RecurrenceType", 0, "PatternStartDate", "2026-12-07", "NoEndDate", true),
                "Exceptions", new object[] { Json.O("OriginalDate", "2026-12-08T09:00:00", "Start", "2026-12-08T09:00:00", "End", "2026-12-08T10:00:00") }));
            var only = (Dictionary<string, object>)((object[])a.Fields["Exceptions"])[0];
            Assert.AreEqual("2026-12-08T10:00:00", only["End"]);
        }

        [Test]
        public void A_series_in_another_zone_addresses_its_exceptions_by_their_local_start()
        {
            RoundTrip(ItemClass.Appointment, Json.O("Subject", "NY daily", "Start", "2026-12-07T08:00:00", "End", "2026-12-07T08:30:00",
                "StartTimeZone", "Eastern Standard Time", "EndTimeZone", "Eastern Standard Time",
                "Recurrence", Json.O("RecurrenceType", 0, "Interval", 1, "PatternStartDate", "2026-12-07", "NoEndDate", true),
                "Exceptions", new object[] { Json.O("OriginalDate", "2026-12-08T08:00:00", "Deleted", true) }));
        }

        [Test]
        public void Meeting_recipients_round_trip()
        {
            RoundTrip(ItemClass.Appointment, Json.O("Subject", "Review", "Start", "2026-12-02T09:00:00", "End", "2026-12-02T10:00:00",
                "StartTimeZone", "UTC", "EndTimeZone", "UTC", "Organizer", "alice@localhost",
                "Recipients", new object[] { Json.O("Name", "Bob", "Address", "bob@localhost", "Type", 1, "MeetingResponseStatus", 3),
                    Json.O("Address", "room@localhost", "Type", 3) }));
        }

        [Test]
        public void A_task_round_trips_with_its_dates_and_reminder()
        {
            var a = RoundTrip(ItemClass.Task, Json.O("Subject", "File taxes", "Body", "Forms", "StartDate", "2026-12-01", "DueDate", "2026-12-15",
                "Status", 1, "PercentComplete", 50, "Importance", 2, "ReminderSet", true, "ReminderTime", "2026-12-14T08:00:00Z", "Categories", "Home"));
            Assert.AreEqual(new DateTime(2026, 12, 15), Item<TaskItem>(a).DueDate);
            var none = RoundTrip(ItemClass.Task, Json.O("Subject", "Someday"));
            Assert.AreEqual(ItemBase.NoDate, Item<TaskItem>(none).DueDate, "no date is Outlook's 4501-01-01");
        }

        [Test]
        public void A_recurring_task_keeps_its_pattern()
        {
            RoundTrip(ItemClass.Task, Json.O("Subject", "Water plants", "DueDate", "2026-12-05",
                "Recurrence", Json.O("RecurrenceType", 1, "Interval", 2, "DayOfWeekMask", 64, "PatternStartDate", "2026-12-05", "NoEndDate", true)));
        }

        [Test]
        public void A_contact_round_trips_with_its_picture()
        {
            var photo = new byte[] { 0xFF, 0xD8, 0xFF, 0xE0, 9, 9 };
            var a = RoundTrip(ItemClass.Contact, Json.O("FullName", "Bob Baker", "FirstName", "Bob", "LastName", "Baker", "CompanyName", "ACME",
                "Email1Address", "bob@localhost", "MobileTelephoneNumber", "+49 170 1", "BusinessAddressCity", "Berlin", "Birthday", "1980-02-29",
                "HasPicture", true, "Body", "Met at FOSDEM"), photo);
            Assert.IsTrue(Item<ContactItem>(a).HasPicture);
            var picture = adapter.ReadPicture(a.EntryId);
            Assert.AreEqual(Convert.ToBase64String(photo), picture["data"]);
        }

        [Test]
        public void A_distribution_list_holds_its_members_by_address()
        {
            var a = RoundTrip(ItemClass.DistList, Json.O("DLName", "Team", "Members", new object[] {
                Json.O("Name", "Carol", "Address", "carol@localhost"), Json.O("Name", "Bob", "Address", "bob@localhost", "Uid", "bob"),
                Json.O("Name", "Nobody", "Uid", "n1") }));
            Assert.AreEqual(2, Item<DistListItem>(a).MemberCount, "members known only by UID stay at the agent");
        }

        [Test]
        public void A_note_shows_its_first_line_as_the_subject()
        {
            var a = RoundTrip(ItemClass.Note, Json.O("Body", "Groceries\nMilk\nBread", "Subject", "Groceries"));
            Assert.AreEqual("Groceries", Item<NoteItem>(a).Subject);
        }

        [Test]
        public void An_update_rewrites_the_fields_and_clears_what_the_agent_cleared()
        {
            var a = RoundTrip(ItemClass.Contact, Json.O("FullName", "Bob Baker", "FirstName", "Bob", "LastName", "Baker", "JobTitle", "CEO"));
            var remote = new RemoteItem { Href = "/alice/x/1", Etag = "\"2\"", Class = ItemClass.Contact, Fields = Json.O("FullName", "Bob Baker", "FirstName", "Bob", "LastName", "Baker") };
            var b = adapter.Write(null, a.EntryId, remote, new Link { Etag = "\"2\"" });
            Assert.AreEqual(a.EntryId, b.EntryId);
            Assert.IsFalse(b.Fields.ContainsKey("JobTitle"));
            Assert.AreEqual("\"2\"", Item<ContactItem>(b).Named("opconnect.etag"));
        }

        [Test]
        public void A_collection_gets_one_folder_found_again_by_its_binding()
        {
            var calendar = app.Session.GetDefaultFolder(9);
            calendar.Folders.Add("Work", 9); // the user's own folder of that name
            var id = Folder(ItemClass.Appointment);
            var again = adapter.EnsureFolder(new FolderSpec { Key = "alice|/alice/Work/|Appointment", Account = "alice", Name = "Work", Family = ItemClass.Appointment }, null);
            Assert.AreEqual(id, again);
            Assert.AreEqual(2, calendar.Folders.Count);
            Assert.AreEqual("Work (alice)", app.Session.GetFolderFromID(id).Name);
        }

        [Test]
        public void The_scan_reads_the_link_columns_and_skips_foreign_item_classes()
        {
            var folder = Folder(ItemClass.Appointment);
            var a = RoundTrip(ItemClass.Appointment, Json.O("Subject", "x", "Start", "2026-12-02T09:00:00", "End", "2026-12-02T09:30:00", "StartTimeZone", "UTC", "EndTimeZone", "UTC"));
            var rows = new List<LocalItem>();
            using (var scan = adapter.OpenScan(folder)) while (scan.Next(TimeSpan.FromSeconds(1), rows)) { }
            var row = rows.Single();
            Assert.AreEqual(a.EntryId, row.EntryId);
            Assert.AreEqual(a.Modified, row.Modified);
            Assert.AreEqual("/alice/x/1", row.Link.Href);
            Assert.AreEqual(FieldSets.Hash(a.Fields), row.Link.Hash);
        }
    }
}

// The whole engine on a worker thread against the stand-in (owned by its own "main" thread) and the
// in-memory agent: first sync in slices, echo suppression, lost answers, held removals, lost state.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using NUnit.Framework;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Outlook;
using OpConnect.Outlook.Standin;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Tests
{
    [TestFixture]
    public class EngineTests
    {
        const string Cal = "/alice/work/";
        const string TaskList = "/alice/tasks/";
        const string BookHref = "/alice/contacts/";
        UiThread ui;
        Application app;
        FakeAgent agent;
        string statePath;

        [SetUp]
        public void SetUp()
        {
            ui = new UiThread();
            app = ui.Own(new Application());
            agent = new FakeAgent().Calendar(Cal, "VEVENT").Calendar(TaskList, "VTODO").Book(BookHref);
            statePath = Path.Combine(Path.GetTempPath(), "oc-state-" + Guid.NewGuid().ToString("N") + ".json");
        }

        [TearDown]
        public void TearDown()
        {
            ui.Dispose();
            if (File.Exists(statePath)) File.Delete(statePath);
        }

        SyncEngine Engine(string path = null)
        {
            var adapter = ui.Invoke(() => new OutlookAdapter(app) { AttachEvents = false });
            return new SyncEngine(agent, adapter, ui, new StateStore(path ?? statePath));
        }

        static Dictionary<string, object> Event(int i)
        {
            var start = new DateTime(2026, 1, 1, 8, 0, 0).AddHours(i * 5);
            return Json.O("Subject", "Event " + i, "Location", "Room " + (i % 7), "Start", start.ToString("s"), "End", start.AddMinutes(45).ToString("s"),
                "StartTimeZone", "W. Europe Standard Time", "EndTimeZone", "W. Europe Standard Time", "ReminderSet", true, "ReminderMinutesBeforeStart", 15);
        }

        Folder CalendarFolder() { return app.Session.GetDefaultFolder(9).Folders[1]; }

        List<ItemBase> In(int folderType)
        {
            return ui.Invoke(() => app.AllItems().Where(i => i.Folder.Parent() == folderType).ToList());
        }

        [Test]
        public void A_first_sync_of_5000_events_runs_in_short_slices_and_a_second_round_does_nothing()
        {
            for (int i = 0; i < 5000; i++) agent.Put(Cal, "appointment", Event(i));
            var engine = Engine();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var report = engine.SyncAll();
            Console.WriteLine("first sync of 5000 events: {0:0} ms, {1} slices, longest slice {2:0.0} ms ({3}), {4:0.0} ms once bound",
                clock.Elapsed.TotalMilliseconds, report.Slices, report.LongestSlice.TotalMilliseconds, report.LongestSliceWhat,
                report.LongestWarmSlice.TotalMilliseconds);
            Assert.AreEqual(5000, report[ActionKind.CreateLocal]);
            Assert.AreEqual(5000, ui.Invoke(() => CalendarFolder().Items.Count));
            Assert.Less(report.LongestWarmSlice.TotalMilliseconds, 50, "Outlook must never freeze");
            Assert.Greater(report.Slices, 20);

            int calls = app.Calls.Count;
            var again = engine.SyncAll();
            Assert.AreEqual(0, again.Done.Values.Sum(), again.ToString());
            Assert.AreEqual(0, app.Calls.Skip(calls).Count(c => c == "Save"), "nothing written to Outlook");
            Assert.AreEqual(0, agent.Count("items.patch") + agent.Count("items.create"));
        }

        [Test]
        public void Items_made_in_outlook_reach_the_agent_with_their_fields()
        {
            agent.Imap = true;
            var engine = Engine();
            engine.SyncAll(); // creates the folders
            ui.Run(() =>
            {
                var cal = CalendarFolder();
                var appt = (AppointmentItem)cal.Items.Add(1);
                appt.Subject = "Dentist"; appt.Location = "Main St";
                appt.StartTimeZone = app.TimeZones["W. Europe Standard Time"]; appt.StartInStartTimeZone = new DateTime(2026, 12, 3, 14, 0, 0);
                appt.EndInEndTimeZone = new DateTime(2026, 12, 3, 15, 0, 0);
                appt.Save();
                var task = (TaskItem)app.Session.GetDefaultFolder(13).Folders[1].Items.Add(3);
                task.Subject = "Buy milk"; task.DueDate = new DateTime(2026, 12, 4); task.Save();
                var contacts = app.Session.GetDefaultFolder(10).Folders[1];
                var bob = (ContactItem)contacts.Items.Add(2);
                bob.FullName = "Bob Baker"; bob.Email1Address = "bob@localhost"; bob.Save();
                var team = (DistListItem)contacts.Items.Add(7);
                team.DLName = "Team";
                var member = app.Session.CreateRecipient("Bob Baker <bob@localhost>"); member.Resolve(); team.AddMember(member);
                team.Save();
                var note = (NoteItem)app.Session.GetDefaultFolder(12).Folders[1].Items.Add(5);
                note.Body = "Groceries\r\nMilk"; note.Save();
            });
            var report = engine.SyncAll();
            Assert.AreEqual(5, report[ActionKind.CreateRemote], report.ToString());
            var byClass = agent.Items.Values.ToDictionary(i => i.Class);
            Assert.AreEqual("Dentist", byClass["appointment"].Fields["Subject"]);
            Assert.AreEqual("2026-12-03T14:00:00", byClass["appointment"].Fields["Start"]);
            Assert.AreEqual("W. Europe Standard Time", byClass["appointment"].Fields["StartTimeZone"]);
            Assert.AreEqual(TaskList, byClass["task"].Collection);
            Assert.AreEqual("2026-12-04", byClass["task"].Fields["DueDate"]);
            Assert.AreEqual("bob@localhost", byClass["contact"].Fields["Email1Address"]);
            Assert.AreEqual("bob@localhost", Json.Str((Dictionary<string, object>)((object[])byClass["distlist"].Fields["Members"])[0], "Address"));
            Assert.AreEqual("Groceries\nMilk", byClass["note"].Fields["Body"]);
            // The agent reports its own items back: recognized as ours, nothing rewritten or re-sent.
            int saves = app.Calls.Count(c => c == "Save");
            var echo = engine.SyncAll();
            Assert.AreEqual(0, echo[ActionKind.CreateLocal] + echo[ActionKind.UpdateLocal] + echo[ActionKind.PatchRemote] + echo[ActionKind.CreateRemote], echo.ToString());
            Assert.AreEqual(saves, app.Calls.Count(c => c == "Save"));
        }

        [Test]
        public void A_dismissed_reminder_is_not_pushed_but_an_edit_is()
        {
            var stored = agent.Put(Cal, "appointment", Event(1));
            var engine = Engine();
            engine.SyncAll();
            var item = ui.Invoke(() => (AppointmentItem)CalendarFolder().Items[1]);
            ui.Run(() => item.DismissReminder());
            engine.SyncAll();
            Assert.AreEqual(0, agent.Count("items.patch"), "a dismissal is no edit");
            ui.Run(() => { item.Subject = "Event 1 (moved)"; item.Save(); });
            engine.SyncAll();
            Assert.AreEqual(1, agent.Count("items.patch"));
            Assert.AreEqual("Event 1 (moved)", stored.Fields["Subject"]);
            Assert.AreEqual("Room 1", stored.Fields["Location"]);
        }

        [Test]
        public void A_change_and_a_removal_at_the_agent_reach_outlook()
        {
            var a = agent.Put(Cal, "appointment", Event(1));
            var b = agent.Put(Cal, "appointment", Event(2));
            var engine = Engine();
            engine.SyncAll();
            agent.Change(a.Href, "Subject", "Changed at the server");
            agent.Remove(b.Href);
            engine.SyncAll();
            var items = ui.Invoke(() => CalendarFolder().Items);
            Assert.AreEqual(1, ui.Invoke(() => items.Count));
            Assert.AreEqual("Changed at the server", ui.Invoke(() => ((AppointmentItem)items[1]).Subject));
        }

        [Test]
        public void Removals_the_agent_holds_are_not_made_in_outlook()
        {
            var a = agent.Put(Cal, "appointment", Event(1));
            var engine = Engine();
            engine.SyncAll();
            agent.Remove(a.Href);
            agent.HeldRemovals = 1;
            var report = engine.SyncAll();
            Assert.AreEqual(1, ui.Invoke(() => CalendarFolder().Items.Count));
            StringAssert.Contains("holds", string.Join("\n", report.Notes));
        }

        [Test]
        public void Answers_lost_mid_sync_leave_no_duplicate_and_nothing_lost()
        {
            var engine = Engine();
            engine.SyncAll();
            ui.Run(() =>
            {
                for (int i = 0; i < 30; i++)
                {
                    var appt = (AppointmentItem)CalendarFolder().Items.Add(1);
                    appt.Subject = "Mine " + i; appt.Save();
                }
            });
            agent.LoseAnswersAfter = 12; // the agent journals the 13th create, the answer is lost
            Assert.Throws<AgentUnavailableException>(() => engine.SyncAll());
            agent.LoseAnswersAfter = -1;
            for (int round = 0; round < 3; round++) engine.SyncAll();
            Assert.AreEqual(30, agent.Items.Count, "each Outlook item once at the agent");
            Assert.AreEqual(30, agent.Items.Values.Select(i => Json.Str(i.Fields, "Subject")).Distinct().Count());
            Assert.AreEqual(30, ui.Invoke(() => CalendarFolder().Items.Count), "and nothing pulled back twice");
        }

        [Test]
        public void A_lost_state_file_costs_a_rescan_not_a_duplicate()
        {
            for (int i = 0; i < 20; i++) agent.Put(Cal, "appointment", Event(i));
            Engine().SyncAll();
            File.Delete(statePath);
            int saves = app.Calls.Count(c => c == "Save");
            var report = Engine().SyncAll();
            Assert.AreEqual(0, report[ActionKind.CreateLocal] + report[ActionKind.CreateRemote] + report[ActionKind.PatchRemote], report.ToString());
            Assert.AreEqual(20, report[ActionKind.Record]);
            Assert.AreEqual(saves, app.Calls.Count(c => c == "Save"));
        }

        [Test]
        public void A_change_on_both_sides_is_left_to_the_agent()
        {
            var a = agent.Put(Cal, "appointment", Event(1));
            var engine = Engine();
            engine.SyncAll();
            agent.Change(a.Href, "Subject", "Server's");
            ui.Run(() => { var i = (AppointmentItem)CalendarFolder().Items[1]; i.Subject = "Mine"; i.Save(); });
            var report = engine.SyncAll();
            Assert.AreEqual(1, agent.ConflictsSeen, "sent with the etag the add-in had: the server's 412 is the agent's conflict");
            StringAssert.Contains("conflict policy decides", string.Join("\n", report.Notes));
        }
    }

    static class FolderExtensions
    {
        /// <summary>The default folder type an item's folder sits under (test helper).</summary>
        public static int Parent(this Folder f) { return f.DefaultItemType; }
    }
}

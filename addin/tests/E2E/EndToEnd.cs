// End to end: the add-in's engine and adapter, with the stand-in in Outlook's place, against the real
// agent and real servers started by tests/tests/addin.rs (Radicale for calendars, tasks, contacts
// and groups; Dovecot for notes). Category "e2e": excluded from the pure run of scripts/test; the
// Rust test runs one fixture at a time with:
//   OPCONNECT_SOCKET   the agent's socket          OPCONNECT_ACCOUNT  the account (alice)
//   OPCONNECT_DAV_URL / _DAV_USER / _DAV_PASSWORD  Radicale, for "another client"'s edits
//   OPCONNECT_E2E_OUT  a JSON file of results the Rust side checks on the servers
//   OPCONNECT_E2E_CONTROL  a directory: the fixture writes "restart", the Rust side restarts the
//                      agent and writes "restarted"
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using NUnit.Framework;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Standin;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Tests.E2E
{
    [TestFixture, Category("e2e")]
    public class EndToEnd
    {
        static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
        Session session;

        static string Env(string name)
        {
            var v = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(v)) Assert.Fail(name + " is not set: run this fixture through tests/tests/addin.rs");
            return v;
        }

        static string Account { get { return Environment.GetEnvironmentVariable("OPCONNECT_ACCOUNT") ?? "alice"; } }

        static Dav Server() { return new Dav(Env("OPCONNECT_DAV_URL"), Env("OPCONNECT_DAV_USER"), Env("OPCONNECT_DAV_PASSWORD")); }

        static void Out(Dictionary<string, object> results)
        {
            File.WriteAllText(Env("OPCONNECT_E2E_OUT"), Json.Write(results));
        }

        [SetUp]
        public void SetUp() { session = new Session(Env("OPCONNECT_SOCKET")); }

        [TearDown]
        public void TearDown() { if (session != null) session.Dispose(); }

        Folder Sub(int defaultFolder, string name)
        {
            return session.Ui.Invoke(() =>
            {
                var parent = session.App.Session.GetDefaultFolder(defaultFolder);
                for (int i = 1; i <= parent.Folders.Count; i++) if (parent.Folders[i].Name.StartsWith(name)) return parent.Folders[i];
                Assert.Fail("no folder " + name + " under " + parent.Name + ": " + session.Describe());
                return null;
            });
        }

        static string Href(ItemBase item) { return item.Named("opconnect.href"); }

        /// <summary>What already works against the agent before issue 16's items.* methods: hello,
        /// status, the collections the add-in would map, and a raw write (calendar.put).</summary>
        [Test]
        public void The_agent_answers_the_addin()
        {
            Assert.AreEqual(1, session.Client.Connections, "hello checked protocol 1");
            var account = Json.Arr(session.Status(), "accounts").OfType<Dictionary<string, object>>().Single(a => Json.Str(a, "name") == Account);
            Assert.IsTrue(Json.Obj(account, "services").ContainsKey("caldav"), Json.Write(account));
            var collections = session.Engine.Discover();
            var work = collections.Single(c => c.Href.EndsWith("/work/"));
            CollectionAssert.Contains(work.Families, ItemClass.Appointment);
            Assert.IsTrue(collections.Any(c => c.Families.Contains(ItemClass.Contact)), "the address book");
            var ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//addin e2e//EN\r\nBEGIN:VEVENT\r\nUID:raw-put\r\n" +
                "DTSTAMP:20261201T000000Z\r\nDTSTART:20261210T100000Z\r\nDURATION:PT1H\r\nSUMMARY:Raw put\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
            var put = session.Client.Call("calendar.put", Json.O("account", Account, "calendar", work.Href, "ics", ics, "wait", true)) as Dictionary<string, object>;
            StringAssert.EndsWith(".ics", Json.Str(put, "href"));
            var items = session.Client.Call("calendar.items", Json.O("account", Account, "calendar", work.Href)) as object[];
            Assert.IsTrue(items.OfType<Dictionary<string, object>>().Any(i => Json.Str(i, "uid") == "raw-put"));
        }

        [Test]
        public void Items_made_in_outlook_reach_the_servers()
        {
            session.Engine.SyncAll(); // the folders
            session.Ui.Run(() =>
            {
                var app = session.App;
                var appt = (AppointmentItem)Sub(9, "Work").Items.Add(1);
                appt.Subject = "Dentist"; appt.Location = "Main St 1"; appt.Categories = "Health";
                appt.StartTimeZone = app.TimeZones["Eastern Standard Time"]; appt.EndTimeZone = app.TimeZones["Eastern Standard Time"];
                appt.StartInStartTimeZone = new DateTime(2026, 12, 10, 14, 0, 0); appt.EndInEndTimeZone = new DateTime(2026, 12, 10, 15, 0, 0);
                appt.ReminderSet = true; appt.ReminderMinutesBeforeStart = 10; appt.BusyStatus = 3;
                appt.Save();
                var task = (TaskItem)Sub(13, "Tasks").Items.Add(3);
                task.Subject = "File taxes"; task.DueDate = new DateTime(2026, 12, 15); task.Importance = 2; task.Save();
                var contacts = Sub(10, "Contacts");
                var bob = (ContactItem)contacts.Items.Add(2);
                bob.FullName = "Bob Baker"; bob.Email1Address = "bob@localhost"; bob.MobileTelephoneNumber = "+49 170 1234"; bob.BusinessAddressCity = "Berlin";
                bob.Save();
                var team = (DistListItem)contacts.Items.Add(7);
                team.DLName = "Team";
                var member = app.Session.CreateRecipient("Bob Baker <bob@localhost>"); member.Resolve(); team.AddMember(member);
                team.Save();
                var note = (NoteItem)Sub(12, "Notes").Items.Add(5);
                note.Body = "Groceries\r\nMilk and bread"; note.Save();
            });
            var report = session.Engine.SyncAll();
            Assert.AreEqual(5, report[ActionKind.CreateRemote], report + "\n" + string.Join("\n", report.Notes));
            session.WaitSettled(Patience);
            var links = new Dictionary<string, object>();
            foreach (var item in session.Items<ItemBase>())
            {
                var cls = OpConnect.Outlook.Outlook.OutlookAdapter.ClassOf(item.MessageClass).Value;
                links[ItemClasses.Wire(cls)] = Href(item);
                Assert.IsNotNull(Href(item), item.MessageClass + " is linked");
            }
            Out(links);
            var appointment = session.Client.Call("items.get", Json.O("account", Account, "href", links["appointment"])) as Dictionary<string, object>;
            Assert.AreEqual("Dentist", Json.Str(Json.Obj(appointment, "fields"), "Subject"));
            Assert.AreEqual("Eastern Standard Time", Json.Str(Json.Obj(appointment, "fields"), "StartTimeZone"));
            // The agent's echo of these writes changes nothing in Outlook.
            session.SyncUntil(() => true, Patience);
            var echo = session.Engine.SyncAll();
            Assert.AreEqual(0, echo[ActionKind.CreateLocal] + echo[ActionKind.CreateRemote] + echo[ActionKind.PatchRemote], echo.ToString());
            Assert.AreEqual(5, session.Items<ItemBase>().Count, "nothing duplicated");
        }

        [Test]
        public void Changes_at_the_server_reach_outlook_and_a_series_arrives_whole()
        {
            // Seeded by the Rust side: plain.ics, doomed.ics and series.ics (weekly, one occurrence
            // deleted by EXDATE, one moved by a RECURRENCE-ID override) in /alice/work/.
            session.SyncUntil(() => session.App.AllItems().Count >= 3, Patience);
            var appointments = session.Items<AppointmentItem>();
            Assert.AreEqual(3, appointments.Count, session.Describe());
            var series = appointments.Single(a => a.Subject == "Weekly sync");
            Assert.IsTrue(series.IsRecurring, "one series, not one item per occurrence");
            var exceptions = session.Ui.Invoke(() => series.GetRecurrencePattern().Exceptions);
            Assert.AreEqual(2, session.Ui.Invoke(() => exceptions.Count), session.Describe());
            Assert.IsTrue(session.Ui.Invoke(() => Enumerable.Range(1, exceptions.Count).Any(i => exceptions[i].Deleted)));
            Assert.IsTrue(session.Ui.Invoke(() => Enumerable.Range(1, exceptions.Count).Any(i => !exceptions[i].Deleted && exceptions[i].AppointmentItem.Subject == "Weekly sync (moved)")));

            var plain = appointments.Single(a => a.Subject == "Plain");
            var doomed = appointments.Single(a => a.Subject == "Doomed");
            var dav = Server();
            dav.EditLine(Href(plain), "SUMMARY", "Plain, renamed by another client");
            dav.Delete(Href(doomed));
            session.SyncUntil(() => plain.Subject == "Plain, renamed by another client" && !session.App.AllItems().Contains(doomed), Patience);
            Assert.AreEqual(2, session.Items<AppointmentItem>().Count);
        }

        [Test]
        public void A_change_on_both_sides_becomes_the_agents_conflict()
        {
            // Seeded: contested.ics. The agent is paused so that its mirror still holds the old
            // version when the add-in's edit arrives: the replay then meets the server's 412.
            session.SyncUntil(() => session.App.AllItems().Count >= 1, Patience);
            var item = session.Items<AppointmentItem>().Single(a => a.Subject == "Contested");
            session.Client.Call("pause", Json.O());
            Server().EditLine(Href(item), "SUMMARY", "Contested (server)");
            session.Ui.Run(() => { item.Subject = "Contested (Outlook)"; item.Save(); });
            var report = session.Engine.SyncAll();
            Assert.AreEqual(1, report[ActionKind.PatchRemote], report.ToString());
            session.Client.Call("resume", Json.O());
            var until = DateTime.UtcNow + Patience;
            object[] conflicts;
            do
            {
                Thread.Sleep(500);
                conflicts = session.Client.Call("conflicts.list", null) as object[];
            } while (conflicts.Length == 0 && DateTime.UtcNow < until);
            Assert.AreEqual(1, conflicts.Length, "the agent's conflict, not a silent overwrite");
            StringAssert.Contains("Contested", Json.Str((Dictionary<string, object>)conflicts[0], "summary"));
            Out(Json.O("href", Href(item)));
        }

        /// <summary>Counts items.create and asks the Rust side to restart the agent after `after` of them.</summary>
        class RestartAfter : IAgent
        {
            readonly IAgent inner;
            readonly int after;
            int creates;
            public RestartAfter(IAgent inner, int after) { this.inner = inner; this.after = after; }
            public object Call(string method, Dictionary<string, object> p)
            {
                if (method == "items.create" && ++creates == after)
                    File.WriteAllText(Path.Combine(Env("OPCONNECT_E2E_CONTROL"), "restart"), "");
                return inner.Call(method, p);
            }
        }

        [Test]
        public void The_agent_restarted_mid_sync_loses_nothing_and_duplicates_nothing()
        {
            const int Count = 150;
            session.Engine.SyncAll();
            session.Ui.Run(() =>
            {
                var folder = Sub(9, "Work");
                for (int i = 0; i < Count; i++)
                {
                    var appt = (AppointmentItem)folder.Items.Add(1);
                    appt.Subject = "Made in Outlook " + i;
                    appt.StartInStartTimeZone = new DateTime(2026, 12, 1, 8, 0, 0).AddHours(i);
                    appt.EndInEndTimeZone = new DateTime(2026, 12, 1, 8, 30, 0).AddHours(i);
                    appt.Save();
                }
            });
            var engine = session.NewEngine(new RestartAfter(session.Client, 40));
            bool interrupted = false;
            try { engine.SyncAll(); }
            catch (AgentUnavailableException) { interrupted = true; }
            catch (TimeoutException) { interrupted = true; }
            var restarted = Path.Combine(Env("OPCONNECT_E2E_CONTROL"), "restarted");
            var until = DateTime.UtcNow + Patience;
            while (!File.Exists(restarted) && DateTime.UtcNow < until) Thread.Sleep(100);
            Assert.IsTrue(File.Exists(restarted), "the Rust side restarted the agent");
            Assert.IsTrue(session.Client.WaitConnected(Patience), "reconnected: " + session.Client.LastError);
            Assert.GreaterOrEqual(session.Client.Connections, 2);
            SyncReport last = null;
            for (int round = 0; round < 10; round++)
            {
                try { last = session.Engine.SyncAll(); }
                catch (AgentUnavailableException) { session.Client.WaitConnected(Patience); continue; }
                if (last[ActionKind.CreateRemote] + last[ActionKind.PatchRemote] + last[ActionKind.LinkLocal] == 0) break;
            }
            session.WaitSettled(Patience);
            var calendar = session.Engine.Discover().Single(c => c.Href.EndsWith("/work/"));
            var all = calendar.Remote.Changes(null).Items;
            Assert.AreEqual(Count, all.Count, "each Outlook item exactly once at the agent (interrupted: " + interrupted + ")");
            Assert.AreEqual(Count, all.Select(i => Json.Str(i.Fields, "Subject")).Distinct().Count());
            Assert.AreEqual(Count, session.Items<AppointmentItem>().Count, "and nothing pulled back twice");
            Out(Json.O("interrupted", interrupted, "connections", (long)session.Client.Connections));
        }

        [Test]
        public void A_first_sync_of_many_events_is_applied_in_short_slices()
        {
            int expected = int.Parse(Env("OPCONNECT_E2E_EVENTS"));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var report = session.SyncUntil(() => session.App.AllItems().Count >= expected, TimeSpan.FromSeconds(240));
            Console.WriteLine("first sync of {0} events from the agent: {1:0} ms, {2} slices, longest slice {3:0.0} ms ({4}), {5:0.0} ms once Outlook's members were bound",
                expected, clock.Elapsed.TotalMilliseconds, report.Slices, report.LongestSlice.TotalMilliseconds, report.LongestSliceWhat,
                report.LongestWarmSlice.TotalMilliseconds);
            Assert.AreEqual(expected, session.Items<AppointmentItem>().Count);
            Out(Json.O("events", (long)expected, "longest_slice_ms", Math.Round(report.LongestSlice.TotalMilliseconds, 1),
                "longest_slice_did", report.LongestSliceWhat, "longest_bound_slice_ms", Math.Round(report.LongestWarmSlice.TotalMilliseconds, 1),
                "slices", (long)report.Slices, "total_ms", (long)clock.Elapsed.TotalMilliseconds));
            // The first slice of each kind binds Outlook's members for the first time (late binding's
            // one-time cost, moved off Outlook's thread as far as it can be by WarmUp); every other
            // slice must stay short.
            Assert.Less(report.LongestWarmSlice.TotalMilliseconds, 50, "Outlook must never freeze");
        }
    }
}

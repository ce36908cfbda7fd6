// scripts/demo's add-in part: the add-in's engine, with the stand-in in Outlook's place, against the
// demo's agent. Prints what Outlook would show, makes an appointment "in Outlook" and shows it on the
// server, then edits an event "as another client" on the server and shows it arriving in "Outlook".
//
//   mono OpConnect.Outlook.Demo.exe SOCKET DAV_URL USER PASSWORD
using System;
using System.Linq;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Standin;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Demo
{
    public static class Program
    {
        static void Say(string line) { Console.WriteLine(line); }

        public static int Main(string[] args)
        {
            if (args.Length < 4) { Console.Error.WriteLine("usage: OpConnect.Outlook.Demo.exe SOCKET DAV_URL USER PASSWORD"); return 2; }
            using (var session = new Session(args[0]))
            {
                var dav = new Dav(args[1], args[2], args[3]);
                Say("==> the add-in connected to the agent (hello: protocol 1) and synced; Outlook would show:");
                try
                {
                    session.SyncUntil(() => session.App.AllItems().Count >= 2, TimeSpan.FromSeconds(30));
                }
                catch (AgentError e)
                {
                    Say("    the agent lacks the item-model methods (" + e.Message + "): nothing more to show");
                    return 1;
                }
                Say(Indent(session.Describe()));

                Say("==> an appointment made in Outlook...");
                session.Ui.Run(() =>
                {
                    var calendar = session.App.Session.GetDefaultFolder(9).Folders[1];
                    var appt = (AppointmentItem)calendar.Items.Add(1);
                    appt.Subject = "Coffee with Bob (made in Outlook)";
                    appt.Location = "Kitchen";
                    appt.StartTimeZone = session.App.TimeZones["W. Europe Standard Time"];
                    appt.StartInStartTimeZone = new DateTime(2026, 11, 26, 10, 0, 0);
                    appt.EndInEndTimeZone = new DateTime(2026, 11, 26, 10, 30, 0);
                    appt.Save();
                });
                var report = session.Engine.SyncAll();
                session.WaitSettled(TimeSpan.FromSeconds(30));
                var made = session.Items<AppointmentItem>().First(a => a.Subject.StartsWith("Coffee"));
                var href = made.Named("opconnect.href");
                Say("    pushed (" + report + "); on the server at " + href + ":");
                foreach (var line in dav.Get(href).Item1.Split('\n').SkipWhile(l => !l.StartsWith("BEGIN:VEVENT"))
                    .Where(l => l.StartsWith("SUMMARY") || l.StartsWith("DTSTART") || l.StartsWith("LOCATION")))
                    Say("      " + line.TrimEnd('\r'));

                Say("==> another client renames the stand-up on the server...");
                var standup = session.Items<AppointmentItem>().First(a => a.Subject.StartsWith("Stand-up"));
                dav.EditLine(standup.Named("opconnect.href"), "SUMMARY", "Stand-up (moved by another client)");
                session.SyncUntil(() => standup.Subject.Contains("another client"), TimeSpan.FromSeconds(30));
                Say("    ...and after the agent's next poll Outlook shows:");
                Say(Indent(session.Describe()));
            }
            return 0;
        }

        static string Indent(string text) { return "    " + text.TrimEnd().Replace("\n", "\n    "); }
    }
}

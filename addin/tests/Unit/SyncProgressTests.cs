// The add-in's progress line from the agent's sync.progress / synced / sync.failed events, and the
// status report's per-service activity (README "Progress of a sync").
using System.Collections.Generic;
using NUnit.Framework;
using OpConnect.Outlook.Host;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Tests
{
    /// <summary>An agent that answers `status` with a given report.</summary>
    class StatusAgent : IAgent
    {
        public Dictionary<string, object> Status;
        public object Call(string method, Dictionary<string, object> parameters) { return Status; }
    }

    [TestFixture]
    public class SyncProgressTests
    {
        static Dictionary<string, object> Step(string what, long done, long total, string folder)
        {
            var p = Json.O("account", "work", "service", "imap", "what", what, "done", done, "total", total);
            if (folder != null) p["folder"] = folder;
            return p;
        }

        [Test]
        public void A_running_round_shows_its_figures_until_the_service_has_synced()
        {
            var progress = new SyncProgress();
            var seen = new List<string>();
            progress.Changed += seen.Add;
            Assert.AreEqual("Up to date", progress.Text);
            progress.Observe("sync.progress", Step("folders", 1, 3, null));
            var messages = Step("messages", 4500, 20000, "INBOX");
            messages["eta_s"] = 12;
            progress.Observe("sync.progress", messages);
            Assert.AreEqual("Syncing… work imap: folders 1 of 3, messages 4,500 of 20,000 (INBOX, about 12 s left)", progress.Text);
            // The last step of a sequence ends it.
            progress.Observe("sync.progress", Step("messages", 20000, 20000, "INBOX"));
            Assert.AreEqual("Syncing… work imap: folders 1 of 3", progress.Text);
            progress.Observe("mail.new", Json.O("account", "work", "folder", "INBOX", "count", 1));
            progress.Observe("synced", Json.O("account", "work", "service", "imap"));
            Assert.AreEqual("Up to date", progress.Text);
            Assert.AreEqual(4, seen.Count, string.Join(" | ", seen.ToArray()));
        }

        [Test]
        public void A_failed_round_says_so_until_the_next_progress()
        {
            var progress = new SyncProgress();
            progress.Observe("sync.progress", Json.O("account", "work", "service", "caldav", "what", "items", "done", 100, "total", 5000, "collection", "/work/cal/"));
            Assert.AreEqual("Syncing… work caldav: items 100 of 5,000 (/work/cal/)", progress.Text);
            progress.Observe("sync.failed", Json.O("account", "work", "service", "caldav", "error", "server unreachable"));
            Assert.AreEqual("work caldav: failed (server unreachable)", progress.Text);
            progress.Observe("synced", Json.O("account", "work", "service", "caldav"));
            Assert.AreEqual("Up to date", progress.Text);
        }

        [Test]
        public void The_status_report_shows_each_services_activity_and_last_error()
        {
            var agent = new StatusAgent();
            agent.Status = Json.O("paused", false, "accounts", new object[] {
                Json.O("name", "alice", "state", "offline", "pending_ops", 0, "conflicts", 0, "services", Json.O(
                    "imap", Json.O("state", "online", "activity", Json.O("doing", "syncing", "progress", new object[] {
                        Json.O("what", "messages", "done", 500, "total", 20000, "folder", "INBOX") })),
                    "caldav", Json.O("state", "offline", "activity", Json.O("doing", "waiting", "until", "2026-12-03T14:00:00Z"),
                        "last_error", Json.O("message", "refused", "at", "2026-12-03T13:59:00Z")),
                    "carddav", Json.O("state", "online", "activity", Json.O("doing", "idle")))) });
            var text = new Commands(agent, new ScriptedPrompt(), null).StatusText();
            StringAssert.Contains("  imap: syncing messages 500 of 20,000 (INBOX)\n", text.Replace("\r\n", "\n"));
            StringAssert.Contains("  caldav: waiting to retry until 2026-12-03T14:00:00Z\n", text.Replace("\r\n", "\n"));
            StringAssert.Contains("  caldav: last error 2026-12-03T13:59:00Z: refused", text);
            StringAssert.DoesNotContain("carddav", text);
        }
    }
}

// The add-in's commands (ribbon buttons): Sync now, pause/resume, out of office, the status report
// and conflicts. All of them are IPC calls; the answers are shown through IPrompt.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Host
{
    /// <summary>How commands talk to the user (message boxes in Outlook, a script in tests).</summary>
    public interface IPrompt
    {
        void Show(string title, string text);
        /// <summary>The index of the chosen option, or -1 when the user cancelled.</summary>
        int Choose(string title, string text, string[] options);
    }

    public class Commands
    {
        readonly IAgent agent;
        readonly IPrompt prompt;
        readonly Action syncNow;

        public Commands(IAgent agent, IPrompt prompt, Action syncNow)
        {
            this.agent = agent;
            this.prompt = prompt;
            this.syncNow = syncNow;
        }

        /// <summary>Asks the agent to poll its servers now, and runs an Outlook sync round.</summary>
        public void SyncNow()
        {
            agent.Call("sync", Json.O());
            if (syncNow != null) syncNow();
        }

        /// <summary>Pauses every account if none is paused, else resumes them; returns the new state.</summary>
        public bool TogglePause()
        {
            var status = agent.Call("status", null) as Dictionary<string, object>;
            bool paused = Json.Bool(status, "paused");
            agent.Call(paused ? "resume" : "pause", Json.O());
            return !paused;
        }

        public string StatusText()
        {
            var status = agent.Call("status", null) as Dictionary<string, object>;
            var sb = new StringBuilder();
            if (Json.Bool(status, "paused")) sb.AppendLine("Paused.");
            foreach (var a in Json.Arr(status, "accounts").OfType<Dictionary<string, object>>())
            {
                sb.Append(Json.Str(a, "name")).Append(": ").Append(Json.Str(a, "state"));
                if (Json.Str(a, "error") != null) sb.Append(" (").Append(Json.Str(a, "error")).Append(')');
                sb.Append(", ").Append(Json.Long(a, "pending_ops", 0)).Append(" pending, ")
                  .Append(Json.Long(a, "conflicts", 0)).Append(" conflicts");
                if (Json.Str(a, "last_sync") != null) sb.Append(", last sync ").Append(Json.Str(a, "last_sync"));
                sb.AppendLine();
                var services = Json.Obj(a, "services");
                if (services == null) continue;
                foreach (var s in services.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    sb.Append(ServiceLine(s.Key, s.Value as Dictionary<string, object>));
            }
            return sb.ToString();
        }

        /// <summary>"  imap: syncing messages 4,500 of 20,000 (INBOX)" from a service's activity and last
        /// error (README "Progress of a sync"); nothing for an idle service without errors.</summary>
        static string ServiceLine(string name, Dictionary<string, object> service)
        {
            var sb = new StringBuilder();
            var activity = Json.Obj(service, "activity");
            var doing = Json.Str(activity, "doing");
            if (doing != null && doing != "idle")
            {
                sb.Append("  ").Append(name).Append(": ").Append(doing);
                if (Json.Str(activity, "until") != null) sb.Append(" to retry until ").Append(Json.Str(activity, "until"));
                var steps = Json.Arr(activity, "progress").OfType<Dictionary<string, object>>().Select(SyncProgress.Step).ToArray();
                if (steps.Length > 0) sb.Append(' ').Append(string.Join(", ", steps));
                sb.AppendLine();
            }
            var error = Json.Obj(service, "last_error");
            if (error != null)
                sb.Append("  ").Append(name).Append(": last error ").Append(Json.Str(error, "at")).Append(": ")
                  .Append(Json.Str(error, "message")).AppendLine();
            return sb.ToString();
        }

        public void ShowStatus() { prompt.Show("opconnect status", StatusText()); }

        /// <summary>Out of office for each account: shows the current state and offers to switch it.</summary>
        public void OutOfOffice()
        {
            var status = agent.Call("status", null) as Dictionary<string, object>;
            foreach (var a in Json.Arr(status, "accounts").OfType<Dictionary<string, object>>())
            {
                var account = Json.Str(a, "name");
                Dictionary<string, object> ooo;
                try { ooo = agent.Call("ooo.get", Json.O("account", account)) as Dictionary<string, object>; }
                catch (AgentError e) { prompt.Show("Out of office", account + ": " + e.Message); continue; }
                bool on = Json.Bool(ooo, "enabled");
                var text = account + ": out of office is " + (on ? "ON" : "off") +
                    (Json.Str(ooo, "subject") != null ? "\nSubject: " + Json.Str(ooo, "subject") : "") +
                    (Json.Str(ooo, "body") != null ? "\n\n" + Json.Str(ooo, "body") : "");
                int choice = prompt.Choose("Out of office", text, new[] { on ? "Turn off" : "Turn on" });
                if (choice != 0) continue;
                var p = Json.O("account", account, "enabled", !on);
                if (!on && Json.Str(ooo, "subject") == null) p["subject"] = "Out of office";
                agent.Call("ooo.set", p);
            }
        }

        /// <summary>Each open conflict, with the agent's three ways out (INTERFACE: conflicts.resolve).</summary>
        public int Conflicts()
        {
            var list = agent.Call("conflicts.list", null) as object[] ?? new object[0];
            int resolved = 0;
            if (list.Length == 0) { prompt.Show("Conflicts", "No conflicts."); return 0; }
            foreach (var c in list.OfType<Dictionary<string, object>>())
            {
                var keep = new[] { "server", "local", "both" };
                int choice = prompt.Choose("Conflict", Json.Str(c, "account") + ": " + Json.Str(c, "summary") +
                    "\n(detected " + Json.Str(c, "detected") + ")", new[] { "Keep the server's", "Keep mine", "Keep both" });
                if (choice < 0) continue;
                agent.Call("conflicts.resolve", Json.O("id", Json.Normalize(c["id"]), "keep", keep[choice]));
                resolved++;
            }
            return resolved;
        }
    }
}

// What the agent is syncing now, from its events (README "Progress of a sync"): sync.progress
// {account, service, what, done, total, eta_s?, folder?|collection?}, synced and sync.failed. Pure:
// events in, one line of text out; the ribbon's label (Connect) shows that line.
//
//   sync.progress ──► running[account service what name] ──► "Syncing… work imap: messages 4,500 of 20,000 (INBOX)"
//   synced        ──► that service's sequences end         ──► "Up to date"
//   sync.failed   ──► failed[account service] = error      ──► "work caldav: failed (refused)"
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Host
{
    public sealed class SyncProgress
    {
        /// <summary>The topics to subscribe to (AgentClient.Topics includes them).</summary>
        public static readonly string[] Topics = { "sync.progress", "synced", "sync.failed" };

        readonly object gate = new object();
        // "account service" → (what + name) → the latest event of that sequence.
        readonly SortedDictionary<string, SortedDictionary<string, Dictionary<string, object>>> running =
            new SortedDictionary<string, SortedDictionary<string, Dictionary<string, object>>>(StringComparer.Ordinal);
        readonly SortedDictionary<string, string> failed = new SortedDictionary<string, string>(StringComparer.Ordinal);
        string text = "Up to date";

        /// <summary>Raised (on the IPC reader thread) when <see cref="Text"/> changed.</summary>
        public event Action<string> Changed;

        public string Text { get { lock (gate) return text; } }

        /// <summary>Takes in one agent event; other topics are ignored.</summary>
        public void Observe(string topic, IDictionary<string, object> p)
        {
            string now;
            lock (gate)
            {
                var service = Json.Str(p, "account") + " " + Json.Str(p, "service");
                switch (topic)
                {
                    case "sync.progress":
                        failed.Remove(service);
                        SortedDictionary<string, Dictionary<string, object>> seqs;
                        if (!running.TryGetValue(service, out seqs))
                            running[service] = seqs = new SortedDictionary<string, Dictionary<string, object>>(StringComparer.Ordinal);
                        var key = Rank(Json.Str(p, "what")) + Json.Str(p, "what") + " " + (Json.Str(p, "folder") ?? Json.Str(p, "collection"));
                        if (Json.Long(p, "done", 0) >= Json.Long(p, "total", 0)) seqs.Remove(key);
                        else seqs[key] = new Dictionary<string, object>(p);
                        if (seqs.Count == 0) running.Remove(service);
                        break;
                    case "synced":
                        running.Remove(service);
                        failed.Remove(service);
                        break;
                    case "sync.failed":
                        running.Remove(service);
                        failed[service] = Json.Str(p, "error") ?? "failed";
                        break;
                    default:
                        return;
                }
                now = Describe();
                if (now == text) return;
                text = now;
            }
            var changed = Changed;
            if (changed != null) changed(now);
        }

        // Outermost first: operations, then folders/collections, then what is inside them.
        static string Rank(string what)
        {
            return what == "operations" ? "0" : what == "folders" || what == "collections" ? "1" : "2";
        }

        string Describe()
        {
            if (running.Count > 0)
            {
                var parts = running.Select(r => r.Key + ": " + string.Join(", ", r.Value.Values.Select(Step).ToArray()));
                return "Syncing… " + string.Join("; ", parts.ToArray());
            }
            if (failed.Count > 0)
                return string.Join("; ", failed.Select(f => f.Key + ": failed (" + f.Value + ")").ToArray());
            return "Up to date";
        }

        /// <summary>"messages 4,500 of 20,000 (INBOX, about 12 s left)", as the agent's CLI says it.</summary>
        public static string Step(IDictionary<string, object> p)
        {
            var sb = new StringBuilder();
            sb.Append(Json.Str(p, "what") ?? "items").Append(' ')
              .Append(Json.Long(p, "done", 0).ToString("#,0", CultureInfo.InvariantCulture)).Append(" of ")
              .Append(Json.Long(p, "total", 0).ToString("#,0", CultureInfo.InvariantCulture));
            var notes = new List<string>();
            var name = Json.Str(p, "folder") ?? Json.Str(p, "collection");
            if (name != null) notes.Add(name);
            if (p.ContainsKey("eta_s")) notes.Add("about " + Json.Long(p, "eta_s", 0) + " s left");
            if (notes.Count > 0) sb.Append(" (").Append(string.Join(", ", notes.ToArray())).Append(')');
            return sb.ToString();
        }
    }
}

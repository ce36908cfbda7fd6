// The add-in as it runs in Outlook, with the stand-in in Outlook's place: a "main" thread owning
// the stand-in, the IPC client on the agent's Unix socket, the engine and its state file. Used by
// the end-to-end fixture and the demo.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Outlook;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Standin
{
    public sealed class Session : IDisposable
    {
        public readonly UiThread Ui = new UiThread();
        public readonly Application App;
        public readonly AgentClient Client;
        public readonly string StatePath;
        public SyncEngine Engine;
        public IAgent Agent;

        public Session(string socket, string statePath = null)
        {
            App = Ui.Own(new Application());
            Client = new AgentClient(new UnixSocketTransport(socket), null, "opconnect-outlook-standin")
            {
                InitialBackoff = TimeSpan.FromMilliseconds(100),
                MaxBackoff = TimeSpan.FromSeconds(1),
            };
            Client.Start();
            if (!Client.WaitConnected(TimeSpan.FromSeconds(20))) throw new InvalidOperationException("no agent at " + socket + ": " + Client.LastError);
            StatePath = statePath ?? Path.Combine(Path.GetTempPath(), "oc-addin-state-" + Guid.NewGuid().ToString("N") + ".json");
            Agent = Client;
            Engine = NewEngine(Client);
        }

        /// <summary>An engine over `agent` (a decorator of the client, for tests that count calls).</summary>
        public SyncEngine NewEngine(IAgent agent)
        {
            Agent = agent;
            var adapter = Ui.Invoke(() => new OutlookAdapter(App) { AttachEvents = false });
            Engine = new SyncEngine(agent, adapter, Ui, new StateStore(StatePath));
            return Engine;
        }

        public Dictionary<string, object> Status() { return Client.Call("status", null) as Dictionary<string, object>; }

        /// <summary>Waits until the agent has no pending operation (its writes reached the servers).</summary>
        public void WaitSettled(TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (true)
            {
                var accounts = Json.Arr(Status(), "accounts").OfType<Dictionary<string, object>>().ToList();
                if (accounts.All(a => Json.Long(a, "pending_ops", 0) == 0)) return;
                if (DateTime.UtcNow > until) throw new TimeoutException("the agent still has pending operations: " + Json.Write(accounts));
                Thread.Sleep(200);
            }
        }

        /// <summary>Asks the agent to poll, syncs, and repeats until `done` holds (checked on Outlook's thread).</summary>
        public SyncReport SyncUntil(Func<bool> done, TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            var total = new SyncReport();
            while (true)
            {
                Client.Call("sync", Json.O());
                var r = Engine.SyncAll();
                total.Slices += r.Slices;
                if (r.LongestSlice > total.LongestSlice) { total.LongestSlice = r.LongestSlice; total.LongestSliceWhat = r.LongestSliceWhat; }
                if (r.LongestWarmSlice > total.LongestWarmSlice) total.LongestWarmSlice = r.LongestWarmSlice;
                foreach (var kv in r.Done) total.Done[kv.Key] = total[kv.Key] + kv.Value;
                total.Notes.AddRange(r.Notes);
                if (Ui.Invoke(done)) return total;
                if (DateTime.UtcNow > until) throw new TimeoutException("not in Outlook after " + timeout + ": " + total +
                    "\n" + string.Join("\n", total.Notes.Distinct()) + "\nOutlook shows:\n" + Describe());
                Thread.Sleep(500);
            }
        }

        public List<T> Items<T>() where T : ItemBase
        {
            return Ui.Invoke(() => App.AllItems().OfType<T>().Where(i => !(i is Occurrence)).ToList());
        }

        /// <summary>What Outlook would show: each folder the add-in made, with its items.</summary>
        public string Describe()
        {
            return Ui.Invoke(() =>
            {
                var sb = new StringBuilder();
                foreach (var kv in new[] { Tuple.Create(9, "Calendar"), Tuple.Create(13, "Tasks"), Tuple.Create(10, "Contacts"), Tuple.Create(12, "Notes") })
                {
                    var parent = App.Session.GetDefaultFolder(kv.Item1);
                    for (int i = 1; i <= parent.Folders.Count; i++)
                    {
                        var f = parent.Folders[i];
                        sb.AppendLine(kv.Item2 + "\\" + f.Name + " (" + f.Items.Count + ")");
                        for (int j = 1; j <= f.Items.Count; j++) sb.AppendLine("    " + Line((ItemBase)f.Items[j]));
                    }
                }
                return sb.ToString();
            });
        }

        static string Line(ItemBase item)
        {
            var a = item as AppointmentItem;
            if (a != null) return a.StartInStartTimeZone.ToString("yyyy-MM-dd HH:mm") + " " + a.StartTimeZone.ID + "  " + a.Subject + (a.IsRecurring ? "  (series, " + a.GetRecurrencePattern().Exceptions.Count + " exceptions)" : "");
            var t = item as TaskItem;
            if (t != null) return "[" + (t.Complete ? "x" : " ") + "] " + t.Subject + (t.DueDate.Year < 4500 ? "  due " + t.DueDate.ToString("yyyy-MM-dd") : "");
            var c = item as ContactItem;
            if (c != null) return c.FullName + "  <" + c.Email1Address + ">";
            var d = item as DistListItem;
            if (d != null) return d.DLName + "  (" + d.MemberCount + " members)";
            var n = item as NoteItem;
            if (n != null) return n.Subject;
            return item.MessageClass;
        }

        public void Dispose()
        {
            Client.Dispose();
            Ui.Dispose();
            try { File.Delete(StatePath); } catch (IOException) { }
        }
    }
}

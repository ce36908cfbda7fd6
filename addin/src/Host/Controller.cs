// The add-in's worker thread: runs sync rounds when something happened (an agent event, an Outlook
// item event, Sync now, a reconnect) or when the periodic scan is due. Never on Outlook's thread;
// stopping never waits for it.
using System;
using System.Threading;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Host
{
    public sealed class Controller : IDisposable
    {
        /// <summary>The safety-net scan: item events are not reliable (bulk adds, hard deletes).</summary>
        public TimeSpan Period = TimeSpan.FromMinutes(2);
        /// <summary>Item events come in bursts (a save fires several): one round after they settle.</summary>
        public TimeSpan Debounce = TimeSpan.FromSeconds(2);

        readonly AgentClient agent;
        readonly SyncEngine engine;
        readonly AutoResetEvent trigger = new AutoResetEvent(true);
        readonly Action<string> log;
        volatile bool stopped;
        volatile bool fromOutlook;
        Thread worker;

        public string LastReport { get; private set; }
        public string LastError { get; private set; }

        public Controller(AgentClient agent, SyncEngine engine, Action<string> log)
        {
            this.agent = agent;
            this.engine = engine;
            this.log = log ?? (s => { });
            agent.Connected += () => Trigger();
            agent.Event += (topic, p) =>
            {
                if (topic == "calendar.changed" || topic == "contacts.changed" || topic == "conflict") Trigger();
            };
        }

        public void Start()
        {
            worker = new Thread(Run) { IsBackground = true, Name = "opconnect-sync" };
            worker.Start();
        }

        public void Trigger() { trigger.Set(); }

        /// <summary>An Outlook item event: sync after the burst settles.</summary>
        public void OutlookChanged() { fromOutlook = true; trigger.Set(); }

        void Run()
        {
            while (!stopped)
            {
                trigger.WaitOne(Period);
                if (stopped) return;
                if (fromOutlook) { fromOutlook = false; Thread.Sleep(Debounce); }
                if (!agent.IsConnected) continue; // the reconnect triggers the next round
                try
                {
                    var report = engine.SyncAll();
                    LastReport = report.ToString();
                    LastError = null;
                    log("sync: " + LastReport);
                    foreach (var n in report.Notes) log("  " + n);
                }
                catch (AgentUnavailableException e) { LastError = e.Message; log("sync interrupted: " + e.Message); }
                catch (ObjectDisposedException) { return; }
                catch (Exception e) { LastError = e.Message; log("sync failed: " + e); }
            }
        }

        public void Dispose()
        {
            stopped = true;
            trigger.Set();
        }
    }
}

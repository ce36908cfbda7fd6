// One long-lived JSON-RPC 2.0 connection to the agent (INTERFACE §4): a connector thread that
// (re)connects with backoff and starts the installed agent when nobody answers, a reader thread that
// routes answers to their callers and events to subscribers, and `hello` checking protocol 1.
//
//   connector ──connect──▶ stream ──▶ reader thread ──answer {id}──▶ waiting Call()
//       ▲   backoff 0.25 s … 30 s          │        └──event──────▶ Event handlers
//       └────────── stream closed ◀────────┘
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;

namespace OpConnect.Outlook.Ipc
{
    /// <summary>The agent answered with a JSON-RPC error (INTERFACE §4 codes: 1 unknown account … 6 conflict).</summary>
    public class AgentError : Exception
    {
        public readonly long Code;
        public AgentError(long code, string message) : base(message + " (code " + code + ")") { Code = code; }
    }

    /// <summary>No connection, or it was lost before the answer came: try again after a reconnect.</summary>
    public class AgentUnavailableException : Exception
    {
        public AgentUnavailableException(string message) : base(message) { }
    }

    /// <summary>What the sync layer needs from the agent: one request, one answer.</summary>
    public interface IAgent
    {
        object Call(string method, Dictionary<string, object> parameters);
    }

    public sealed class AgentClient : IAgent, IDisposable
    {
        /// <summary>The IPC protocol this add-in speaks (INTERFACE §4, `hello`).</summary>
        public const long Protocol = 1;

        public TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(250);
        // Cap: an agent that comes back is noticed within half a minute.
        public TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
        public TimeSpan CallTimeout = TimeSpan.FromSeconds(120);
        public TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);
        /// <summary>Topics subscribed after each `hello`.</summary>
        public string[] Topics = { "calendar.changed", "contacts.changed", "state", "conflict", "op.failed",
            "sync.progress", "synced", "sync.failed" };

        /// <summary>Raised on the reader thread: handlers must return quickly.</summary>
        public event Action<string, Dictionary<string, object>> Event;
        public event Action Connected;
        public event Action<string> Disconnected;

        readonly ITransport transport;
        readonly Action launchAgent;
        readonly string clientName;
        readonly object gate = new object();
        readonly Dictionary<long, Pending> pending = new Dictionary<long, Pending>();
        readonly ManualResetEvent wake = new ManualResetEvent(false);
        Stream stream;
        bool ready;
        bool stopped;
        long nextId;
        int connections;
        string lastError;
        Thread connector;

        sealed class Pending
        {
            public readonly ManualResetEventSlim Done = new ManualResetEventSlim(false);
            public Dictionary<string, object> Answer;
            public string Lost;
        }

        /// <param name="launchAgent">starts the installed agent; called when connecting fails (may be null)</param>
        public AgentClient(ITransport transport, Action launchAgent, string clientName)
        {
            this.transport = transport;
            this.launchAgent = launchAgent;
            this.clientName = clientName;
        }

        public bool IsConnected { get { lock (gate) return ready; } }
        /// <summary>How many times a connection was established and greeted (1 + reconnects).</summary>
        public int Connections { get { lock (gate) return connections; } }
        public string LastError { get { lock (gate) return lastError; } }

        public void Start()
        {
            lock (gate)
            {
                if (connector != null) return;
                connector = new Thread(ConnectLoop) { IsBackground = true, Name = "opconnect-ipc-connect" };
            }
            connector.Start();
        }

        /// <summary>Never blocks on the agent (Outlook's shutdown budget is ~500 ms): closes and returns.</summary>
        public void Dispose()
        {
            Stream s;
            lock (gate)
            {
                stopped = true;
                s = stream;
                stream = null;
                ready = false;
            }
            wake.Set();
            if (s != null) { try { s.Dispose(); } catch (Exception) { } }
            FailPending("the add-in is shutting down");
        }

        public bool WaitConnected(TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < until)
            {
                if (IsConnected) return true;
                Thread.Sleep(20);
            }
            return IsConnected;
        }

        public object Call(string method, Dictionary<string, object> parameters)
        {
            return Call(method, parameters, CallTimeout);
        }

        /// <exception cref="AgentError">the agent refused</exception>
        /// <exception cref="AgentUnavailableException">not connected, or the connection went away</exception>
        public object Call(string method, Dictionary<string, object> parameters, TimeSpan timeout)
        {
            Stream s;
            lock (gate)
            {
                if (!ready) throw new AgentUnavailableException("the opconnect agent is not connected" + (lastError != null ? ": " + lastError : ""));
                s = stream;
            }
            return Send(s, method, parameters, timeout);
        }

        object Send(Stream s, string method, Dictionary<string, object> parameters, TimeSpan timeout)
        {
            var p = new Pending();
            long id;
            lock (gate) { id = ++nextId; pending[id] = p; }
            try
            {
                var request = Json.O("jsonrpc", "2.0", "id", id, "method", method,
                    "params", parameters ?? new Dictionary<string, object>());
                var frame = Framing.Encode(Json.Write(request));
                try
                {
                    lock (s) { s.Write(frame, 0, frame.Length); s.Flush(); }
                }
                catch (Exception e)
                {
                    Drop(s, "write failed: " + e.Message);
                    throw new AgentUnavailableException("the connection to the agent broke: " + e.Message);
                }
                if (!p.Done.Wait(timeout)) throw new TimeoutException("no answer to " + method + " within " + timeout);
                if (p.Lost != null) throw new AgentUnavailableException(p.Lost);
                var error = Json.Obj(p.Answer, "error");
                if (error != null) throw new AgentError(Json.Long(error, "code", 0), Json.Str(error, "message") ?? "error");
                object result;
                p.Answer.TryGetValue("result", out result);
                return result;
            }
            finally
            {
                lock (gate) pending.Remove(id);
            }
        }

        void ConnectLoop()
        {
            var backoff = InitialBackoff;
            var random = new Random();
            DateTime lastLaunch = DateTime.MinValue;
            while (true)
            {
                lock (gate) if (stopped) return;
                Stream s = null;
                try
                {
                    s = transport.Connect(ConnectTimeout);
                }
                catch (Exception e)
                {
                    SetError("cannot reach the agent at " + transport.Describe() + ": " + e.Message);
                    // Nobody answers: start the installed agent, at most once a minute.
                    if (launchAgent != null && DateTime.UtcNow - lastLaunch > TimeSpan.FromMinutes(1))
                    {
                        lastLaunch = DateTime.UtcNow;
                        try { launchAgent(); } catch (Exception le) { SetError("cannot start the agent: " + le.Message); }
                    }
                }
                if (s != null && Greet(s))
                {
                    backoff = InitialBackoff;
                    // Wait until the reader thread reports the stream closed (or we stop).
                    while (true)
                    {
                        wake.WaitOne(1000);
                        lock (gate)
                        {
                            if (stopped) return;
                            if (stream != s) { wake.Reset(); break; }
                        }
                    }
                    continue;
                }
                // Backoff with jitter, so that several clients do not reconnect in step.
                var delay = TimeSpan.FromMilliseconds(backoff.TotalMilliseconds * (0.75 + random.NextDouble() / 2));
                wake.WaitOne(delay);
                lock (gate) { if (stopped) return; wake.Reset(); }
                backoff = TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, backoff.TotalMilliseconds * 2));
            }
        }

        // Starts the reader, then `hello` (protocol 1) and `subscribe`. False: the stream was closed.
        bool Greet(Stream s)
        {
            lock (gate)
            {
                if (stopped) { s.Dispose(); return false; }
                stream = s;
            }
            var reader = new Thread(() => ReadLoop(s)) { IsBackground = true, Name = "opconnect-ipc-read" };
            reader.Start();
            try
            {
                var hello = Send(s, "hello", Json.O("client", clientName), TimeSpan.FromSeconds(10)) as Dictionary<string, object>;
                long protocol = Json.Long(hello, "protocol", -1);
                if (protocol != Protocol)
                {
                    Drop(s, "the agent speaks protocol " + protocol + ", this add-in protocol " + Protocol);
                    return false;
                }
                Send(s, "subscribe", Json.O("topics", Topics), TimeSpan.FromSeconds(10));
            }
            catch (Exception e)
            {
                Drop(s, "greeting the agent failed: " + e.Message);
                return false;
            }
            lock (gate)
            {
                if (stream != s) return false;
                ready = true;
                connections++;
                lastError = null;
            }
            var handler = Connected;
            if (handler != null) handler();
            return true;
        }

        void ReadLoop(Stream s)
        {
            string why = "the agent closed the connection";
            try
            {
                while (true)
                {
                    var text = Framing.Read(s);
                    if (text == null) break;
                    Dictionary<string, object> message;
                    try { message = Json.ParseObject(text); }
                    catch (Exception) { continue; } // one bad frame is skipped; the stream stays in step
                    if (message == null) continue;
                    if (message.ContainsKey("id") && (message.ContainsKey("result") || message.ContainsKey("error")))
                    {
                        long id = Json.Long(message, "id", -1);
                        Pending p;
                        lock (gate) pending.TryGetValue(id, out p);
                        if (p != null) { p.Answer = message; p.Done.Set(); }
                    }
                    else if (Json.Str(message, "method") == "event")
                    {
                        var parameters = Json.Obj(message, "params") ?? new Dictionary<string, object>();
                        var handler = Event;
                        if (handler != null)
                        {
                            try { handler(Json.Str(parameters, "topic"), parameters); }
                            catch (Exception) { } // a subscriber's bug must not kill the reader
                        }
                    }
                }
            }
            catch (Exception e)
            {
                why = e is FrameTooLargeException ? e.Message : "the connection to the agent broke: " + e.Message;
            }
            Drop(s, why);
        }

        void Drop(Stream s, string why)
        {
            bool was;
            lock (gate)
            {
                was = stream == s;
                if (was) { stream = null; ready = false; lastError = why; }
            }
            try { s.Dispose(); } catch (Exception) { }
            if (!was) return;
            FailPending(why);
            wake.Set();
            var handler = Disconnected;
            if (handler != null) handler(why);
        }

        void FailPending(string why)
        {
            List<Pending> all;
            lock (gate) all = new List<Pending>(pending.Values);
            foreach (var p in all)
            {
                if (p.Done.IsSet) continue;
                p.Lost = why;
                p.Done.Set();
            }
        }

        void SetError(string error) { lock (gate) lastError = error; }
    }
}

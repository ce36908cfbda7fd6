// A scripted agent on a Unix socket for the IPC tests: answers hello/subscribe, echoes other
// requests, and can interleave events, split its frames into pieces, send an oversize frame, or die.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Tests
{
    public sealed class SocketAgent : IDisposable
    {
        readonly Socket listener;
        readonly string path;
        readonly List<Socket> peers = new List<Socket>();
        public long Protocol = 1;
        public bool EventsBeforeAnswers;
        public bool SplitWrites;
        /// <summary>Answer the next request with a frame header announcing 17 MiB.</summary>
        public volatile bool OversizeOnce;
        public int Accepted;

        public SocketAgent(string path)
        {
            this.path = path;
            if (File.Exists(path)) File.Delete(path);
            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixEndPoint(path));
            listener.Listen(8);
            new Thread(AcceptLoop) { IsBackground = true }.Start();
        }

        public static string TempPath()
        {
            return Path.Combine(Path.GetTempPath(), "oc-" + Guid.NewGuid().ToString("N").Substring(0, 12) + ".sock");
        }

        void AcceptLoop()
        {
            while (true)
            {
                Socket peer;
                try { peer = listener.Accept(); }
                catch (Exception) { return; }
                lock (peers) { peers.Add(peer); Accepted++; }
                new Thread(() => Serve(peer)) { IsBackground = true }.Start();
            }
        }

        void Serve(Socket peer)
        {
            try
            {
                using (var stream = new NetworkStream(peer, true))
                {
                    while (true)
                    {
                        var text = Framing.Read(stream);
                        if (text == null) return;
                        var request = Json.ParseObject(text);
                        var method = Json.Str(request, "method");
                        object result;
                        if (method == "hello") result = Json.O("agent", "socket-agent", "protocol", Protocol);
                        else if (method == "subscribe") result = Json.O();
                        else if (method == "fail") { Send(stream, Json.O("jsonrpc", "2.0", "id", request["id"], "error", Json.O("code", 5L, "message", "not found"))); continue; }
                        else result = Json.O("method", method, "params", request["params"]);
                        if (EventsBeforeAnswers)
                            Send(stream, Json.O("jsonrpc", "2.0", "method", "event", "params", Json.O("topic", "calendar.changed", "account", "alice")));
                        if (OversizeOnce)
                        {
                            OversizeOnce = false;
                            stream.Write(new byte[] { 0x01, 0x10, 0x00, 0x00 }, 0, 4);
                            continue;
                        }
                        Send(stream, Json.O("jsonrpc", "2.0", "id", request["id"], "result", result));
                    }
                }
            }
            catch (Exception) { }
        }

        void Send(Stream stream, object message)
        {
            var frame = Framing.Encode(Json.Write(message));
            if (!SplitWrites) { stream.Write(frame, 0, frame.Length); return; }
            // Pieces that cut the header and the body: the reader must reassemble them.
            int[] cuts = { 0, 2, 5, frame.Length / 2, frame.Length };
            for (int i = 0; i + 1 < cuts.Length; i++)
            {
                if (cuts[i + 1] <= cuts[i]) continue;
                stream.Write(frame, cuts[i], cuts[i + 1] - cuts[i]);
                stream.Flush();
                Thread.Sleep(2);
            }
        }

        /// <summary>The agent dies: listener and every connection closed, the socket file gone.</summary>
        public void Dispose()
        {
            try { listener.Close(); } catch (Exception) { }
            lock (peers) foreach (var p in peers) { try { p.Shutdown(SocketShutdown.Both); p.Close(); } catch (Exception) { } }
            try { File.Delete(path); } catch (Exception) { }
        }
    }
}

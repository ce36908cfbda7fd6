// IPC framing and the long-lived connection: split frames, interleaved events, oversize frames,
// protocol check, an agent restart and the agent started when nobody answers.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using NUnit.Framework;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Tests
{
    /// <summary>A stream that hands out one byte per Read, as a slow pipe may.</summary>
    class TrickleStream : MemoryStream
    {
        public TrickleStream(byte[] data) : base(data) { }
        public override int Read(byte[] buffer, int offset, int count) { return base.Read(buffer, offset, Math.Min(1, count)); }
    }

    [TestFixture]
    public class FramingTests
    {
        [Test]
        public void A_frame_is_a_big_endian_length_and_utf8_json()
        {
            var frame = Framing.Encode("{\"a\":\"é\"}");
            CollectionAssert.AreEqual(new byte[] { 0, 0, 0, 10 }, new[] { frame[0], frame[1], frame[2], frame[3] });
            Assert.AreEqual("{\"a\":\"é\"}", Encoding.UTF8.GetString(frame, 4, 10));
        }

        [Test]
        public void Frames_split_into_single_bytes_are_reassembled()
        {
            var bytes = new List<byte>();
            bytes.AddRange(Framing.Encode("{\"id\":1}"));
            bytes.AddRange(Framing.Encode("{\"id\":2}"));
            var stream = new TrickleStream(bytes.ToArray());
            Assert.AreEqual("{\"id\":1}", Framing.Read(stream));
            Assert.AreEqual("{\"id\":2}", Framing.Read(stream));
            Assert.IsNull(Framing.Read(stream), "a clean end between frames");
        }

        [Test]
        public void An_oversize_frame_is_refused_before_its_body_is_read()
        {
            var stream = new MemoryStream(new byte[] { 0x01, 0x00, 0x00, 0x01 }); // 16 MiB + 1
            Assert.Throws<FrameTooLargeException>(() => Framing.Read(stream));
            Assert.AreEqual(4, stream.Position);
            Assert.Throws<FrameTooLargeException>(() => Framing.Encode(new string('x', Framing.MaxFrame + 1)));
        }

        [Test]
        public void A_stream_that_ends_inside_a_frame_is_an_error()
        {
            Assert.Throws<EndOfStreamException>(() => Framing.Read(new MemoryStream(new byte[] { 0, 0, 0, 9, (byte)'{' })));
        }

        [Test]
        public void Large_json_parses_beyond_the_serializer_default()
        {
            var big = new string('x', 3 * 1024 * 1024);
            var parsed = Json.ParseObject(Json.Write(Json.O("ics", big)));
            Assert.AreEqual(big.Length, ((string)parsed["ics"]).Length);
        }

        [Test]
        public void Canonical_json_ignores_key_order_and_number_types()
        {
            Assert.AreEqual(Json.Canonical(Json.O("b", 1, "a", 2.0m)), Json.Canonical(Json.O("a", 2L, "b", 1L)));
        }
    }

    [TestFixture]
    public class AgentClientTests
    {
        static AgentClient Client(string path, Action launch = null)
        {
            var c = new AgentClient(new UnixSocketTransport(path), launch, "tests")
            {
                InitialBackoff = TimeSpan.FromMilliseconds(20),
                MaxBackoff = TimeSpan.FromMilliseconds(200),
                CallTimeout = TimeSpan.FromSeconds(10),
            };
            c.Start();
            return c;
        }

        [Test]
        public void Answers_reach_their_callers_between_interleaved_events_in_split_frames()
        {
            var path = SocketAgent.TempPath();
            using (var agent = new SocketAgent(path) { EventsBeforeAnswers = true, SplitWrites = true })
            using (var client = Client(path))
            {
                int events = 0;
                client.Event += (topic, p) => { if (topic == "calendar.changed") Interlocked.Increment(ref events); };
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)), client.LastError);
                var threads = new List<Thread>();
                var errors = new List<string>();
                for (int t = 0; t < 4; t++)
                {
                    int n = t;
                    var th = new Thread(() =>
                    {
                        for (int i = 0; i < 10; i++)
                        {
                            var r = client.Call("echo", Json.O("n", n * 100 + i)) as Dictionary<string, object>;
                            if (Json.Long(Json.Obj(r, "params"), "n", -1) != n * 100 + i) lock (errors) errors.Add("wrong answer " + Json.Write(r));
                        }
                    });
                    th.Start();
                    threads.Add(th);
                }
                foreach (var th in threads) th.Join();
                CollectionAssert.IsEmpty(errors);
                Assert.GreaterOrEqual(events, 40, "every interleaved event was delivered");
            }
        }

        [Test]
        public void An_error_answer_is_an_agent_error_with_its_code()
        {
            var path = SocketAgent.TempPath();
            using (new SocketAgent(path))
            using (var client = Client(path))
            {
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)));
                var e = Assert.Throws<AgentError>(() => client.Call("fail", null));
                Assert.AreEqual(5, e.Code);
            }
        }

        [Test]
        public void Another_protocol_is_refused()
        {
            var path = SocketAgent.TempPath();
            using (new SocketAgent(path) { Protocol = 2 })
            using (var client = Client(path))
            {
                Assert.IsFalse(client.WaitConnected(TimeSpan.FromMilliseconds(600)));
                StringAssert.Contains("protocol 2", client.LastError);
                Assert.Throws<AgentUnavailableException>(() => client.Call("status", null));
            }
        }

        [Test]
        public void An_oversize_frame_closes_the_connection_and_the_client_reconnects()
        {
            var path = SocketAgent.TempPath();
            using (var agent = new SocketAgent(path))
            using (var client = Client(path))
            {
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)));
                agent.OversizeOnce = true;
                var e = Assert.Throws<AgentUnavailableException>(() => client.Call("status", null));
                StringAssert.Contains("limit", e.Message);
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)), client.LastError);
                Assert.IsNotNull(client.Call("status", null));
                Assert.AreEqual(2, client.Connections);
            }
        }

        [Test]
        public void An_agent_restart_fails_pending_calls_then_the_client_reconnects()
        {
            var path = SocketAgent.TempPath();
            var agent = new SocketAgent(path);
            using (var client = Client(path))
            {
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)));
                agent.Dispose();
                Thread.Sleep(100);
                Assert.Throws<AgentUnavailableException>(() => client.Call("status", null));
                using (new SocketAgent(path))
                {
                    Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)), client.LastError);
                    Assert.IsNotNull(client.Call("status", null));
                    Assert.AreEqual(2, client.Connections);
                }
            }
        }

        [Test]
        public void Nobody_at_the_socket_starts_the_installed_agent()
        {
            var path = SocketAgent.TempPath();
            SocketAgent started = null;
            int launches = 0;
            using (var client = Client(path, () => { launches++; started = new SocketAgent(path); }))
            {
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)), client.LastError);
                Assert.AreEqual(1, launches);
            }
            started.Dispose();
        }

        [Test]
        public void Dispose_returns_at_once_even_with_a_call_waiting()
        {
            var path = SocketAgent.TempPath();
            using (new SocketAgent(path))
            {
                var client = Client(path);
                Assert.IsTrue(client.WaitConnected(TimeSpan.FromSeconds(5)));
                var clock = System.Diagnostics.Stopwatch.StartNew();
                client.Dispose();
                Assert.Less(clock.ElapsedMilliseconds, 100, "Outlook's shutdown budget");
            }
        }
    }
}

// How the add-in reaches the agent: the named pipe on Windows (INTERFACE §1: \\.\pipe\opconnect-<user>),
// a Unix-domain socket for the tests on Linux.
using System;
using System.IO;
using System.IO.Pipes;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OpConnect.Outlook.Ipc
{
    /// <summary>Opens one duplex byte stream to the agent, or throws IOException/SocketException/TimeoutException.</summary>
    public interface ITransport
    {
        Stream Connect(TimeSpan timeout);
        string Describe();
    }

    /// <summary>The agent's named pipe. UNTESTED on these machines (no Windows): reviewed only.</summary>
    public class NamedPipeTransport : ITransport
    {
        readonly string pipeName;

        public NamedPipeTransport(string pipeName) { this.pipeName = pipeName; }

        /// <summary>INTERFACE §1: the default pipe, opconnect-&lt;user&gt;.</summary>
        public static NamedPipeTransport ForCurrentUser()
        {
            return new NamedPipeTransport("opconnect-" + Environment.UserName);
        }

        public Stream Connect(TimeSpan timeout)
        {
            var pipe = new NamedPipeClientStream(".", pipeName, PipeDirection.InOut, PipeOptions.None);
            try
            {
                pipe.Connect((int)timeout.TotalMilliseconds);
                return pipe;
            }
            catch
            {
                pipe.Dispose();
                throw;
            }
        }

        public string Describe() { return @"\\.\pipe\" + pipeName; }
    }

    /// <summary>The agent's Unix-domain socket (tests and the demo on Linux).</summary>
    public class UnixSocketTransport : ITransport
    {
        readonly string path;

        public UnixSocketTransport(string path) { this.path = path; }

        public Stream Connect(TimeSpan timeout)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.SendTimeout = (int)timeout.TotalMilliseconds;
                socket.Connect(new UnixEndPoint(path));
                return new NetworkStream(socket, true);
            }
            catch
            {
                socket.Close();
                throw;
            }
        }

        public string Describe() { return path; }
    }

    /// <summary>A sockaddr_un: family AF_UNIX, then the NUL-terminated path (Mono 6.8 has no UnixDomainSocketEndPoint).</summary>
    public class UnixEndPoint : EndPoint
    {
        // sockaddr_un.sun_path is 108 bytes on Linux.
        const int MaxPath = 107;
        readonly string path;

        public UnixEndPoint(string path)
        {
            if (Encoding.UTF8.GetByteCount(path) > MaxPath) throw new ArgumentException("socket path too long: " + path);
            this.path = path;
        }

        public override AddressFamily AddressFamily { get { return AddressFamily.Unix; } }

        public override SocketAddress Serialize()
        {
            var bytes = Encoding.UTF8.GetBytes(path);
            var address = new SocketAddress(AddressFamily.Unix, 2 + bytes.Length + 1);
            for (int i = 0; i < bytes.Length; i++) address[2 + i] = bytes[i];
            address[2 + bytes.Length] = 0;
            return address;
        }

        public override EndPoint Create(SocketAddress address)
        {
            var bytes = new byte[address.Size - 2];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = address[2 + i];
            int end = Array.IndexOf(bytes, (byte)0);
            return new UnixEndPoint(Encoding.UTF8.GetString(bytes, 0, end < 0 ? bytes.Length : end));
        }

        public override string ToString() { return path; }
    }
}

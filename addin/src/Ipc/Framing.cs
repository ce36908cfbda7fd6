// INTERFACE §4 framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
using System;
using System.IO;
using System.Text;

namespace OpConnect.Outlook.Ipc
{
    /// <summary>A frame longer than the limit: the connection must be closed (INTERFACE §4).</summary>
    public class FrameTooLargeException : IOException
    {
        public FrameTooLargeException(long length)
            : base("IPC frame of " + length + " bytes is over the " + Framing.MaxFrame + "-byte limit") { }
    }

    public static class Framing
    {
        /// <summary>INTERFACE §4: frames over 16 MiB are refused.</summary>
        public const int MaxFrame = 16 * 1024 * 1024;

        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        public static byte[] Encode(string json)
        {
            var body = Utf8.GetBytes(json);
            if (body.Length > MaxFrame) throw new FrameTooLargeException(body.Length);
            var frame = new byte[4 + body.Length];
            frame[0] = (byte)(body.Length >> 24);
            frame[1] = (byte)(body.Length >> 16);
            frame[2] = (byte)(body.Length >> 8);
            frame[3] = (byte)body.Length;
            Buffer.BlockCopy(body, 0, frame, 4, body.Length);
            return frame;
        }

        public static void Write(Stream stream, string json)
        {
            var frame = Encode(json);
            stream.Write(frame, 0, frame.Length);
            stream.Flush();
        }

        /// <summary>The next frame's text, or null at a clean end of stream between frames.</summary>
        /// <exception cref="FrameTooLargeException">the announced length is over the limit (nothing more is read)</exception>
        /// <exception cref="EndOfStreamException">the stream ended inside a frame</exception>
        public static string Read(Stream stream)
        {
            var header = new byte[4];
            if (!ReadExactly(stream, header, 4, true)) return null;
            long length = ((long)header[0] << 24) | ((long)header[1] << 16) | ((long)header[2] << 8) | header[3];
            if (length > MaxFrame) throw new FrameTooLargeException(length);
            var body = new byte[length];
            ReadExactly(stream, body, (int)length, false);
            return Utf8.GetString(body);
        }

        // Reads may return any part of a frame (split frames): loop until it is whole.
        static bool ReadExactly(Stream stream, byte[] buffer, int count, bool eofAllowedAtStart)
        {
            int done = 0;
            while (done < count)
            {
                int n = stream.Read(buffer, done, count - done);
                if (n <= 0)
                {
                    if (done == 0 && eofAllowedAtStart) return false;
                    throw new EndOfStreamException("IPC stream ended inside a frame (" + done + " of " + count + " bytes)");
                }
                done += n;
            }
            return true;
        }
    }
}

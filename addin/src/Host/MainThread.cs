// Outlook's main thread for the engine's slices: work queued by the worker runs from a Win32 timer
// on the thread that created it (Outlook's UI thread, inside Outlook's own message loop), one queued
// slice per tick, so Outlook's messages are pumped between slices. UNTESTED here (no Windows).
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Host
{
    public sealed class Win32MainThread : IMainThread, IDisposable
    {
        delegate void TimerProc(IntPtr hwnd, uint msg, UIntPtr id, uint time);

        [DllImport("user32.dll")]
        static extern UIntPtr SetTimer(IntPtr hwnd, UIntPtr id, uint elapse, TimerProc proc);

        [DllImport("user32.dll")]
        static extern bool KillTimer(IntPtr hwnd, UIntPtr id);

        // A tick of 10 ms: between two slices Outlook gets at least one turn of its message loop.
        const uint TickMs = 10;
        readonly Queue<Action> queue = new Queue<Action>();
        readonly TimerProc proc; // kept referenced: the native timer calls it
        readonly int mainThreadId;
        UIntPtr timer;
        bool disposed;

        /// <summary>Create on Outlook's main thread (OnStartupComplete).</summary>
        public Win32MainThread()
        {
            mainThreadId = Thread.CurrentThread.ManagedThreadId;
            proc = Tick;
            timer = SetTimer(IntPtr.Zero, UIntPtr.Zero, TickMs, proc);
        }

        void Tick(IntPtr hwnd, uint msg, UIntPtr id, uint time)
        {
            Action next = null;
            lock (queue) if (queue.Count > 0) next = queue.Dequeue();
            if (next != null) next();
        }

        public T Invoke<T>(Func<T> work)
        {
            if (Thread.CurrentThread.ManagedThreadId == mainThreadId) return work();
            T result = default(T);
            Exception failure = null;
            using (var done = new ManualResetEventSlim(false))
            {
                lock (queue)
                {
                    if (disposed) throw new ObjectDisposedException("Outlook is shutting down");
                    queue.Enqueue(() =>
                    {
                        try { result = work(); }
                        catch (Exception e) { failure = e; }
                        finally { done.Set(); }
                    });
                }
                while (!done.Wait(500)) { lock (queue) if (disposed) throw new ObjectDisposedException("Outlook is shutting down"); }
            }
            if (failure != null) throw new InvalidOperationException("Outlook call failed: " + failure.Message, failure);
            return result;
        }

        public void Dispose()
        {
            lock (queue) { disposed = true; queue.Clear(); }
            if (timer != UIntPtr.Zero) { KillTimer(IntPtr.Zero, timer); timer = UIntPtr.Zero; }
        }
    }
}

// Outlook's main thread in the tests: one dedicated thread that runs queued work, as the add-in's
// slices run on Outlook's UI thread; the stand-in refuses calls from any other thread.
using System;
using System.Collections.Concurrent;
using System.Threading;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Standin
{
    public sealed class UiThread : IMainThread, IDisposable
    {
        readonly BlockingCollection<Action> queue = new BlockingCollection<Action>();
        readonly Thread thread;

        public UiThread()
        {
            thread = new Thread(() => { foreach (var work in queue.GetConsumingEnumerable()) work(); })
            { IsBackground = true, Name = "outlook-main" };
            thread.Start();
        }

        public int ThreadId { get { return thread.ManagedThreadId; } }

        /// <summary>Makes `app` refuse calls from any thread but this one.</summary>
        public Application Own(Application app)
        {
            app.MainThreadId = ThreadId;
            return app;
        }

        public T Invoke<T>(Func<T> work)
        {
            if (Thread.CurrentThread == thread) return work();
            T result = default(T);
            Exception failure = null;
            using (var done = new ManualResetEventSlim())
            {
                queue.Add(() =>
                {
                    try { result = work(); }
                    catch (Exception e) { failure = e; }
                    finally { done.Set(); }
                });
                done.Wait();
            }
            if (failure != null) throw new InvalidOperationException("on Outlook's thread: " + failure.Message, failure);
            return result;
        }

        public void Run(Action work) { Invoke(() => { work(); return 0; }); }

        public void Dispose() { queue.CompleteAdding(); }
    }
}

// The COM add-in Outlook loads (IDTExtensibility2). Outlook disables add-ins slow to load (~1 s) or to
// unload (~500 ms): OnConnection only keeps Application; the pipe, the engine and the first sync
// start after OnStartupComplete, on a worker thread; OnBeginShutdown closes and returns at once.
// The ribbon (IRibbonExtensibility) holds the commands. UNTESTED here: Outlook itself, COM loading.
using System;
using System.IO;
using System.Runtime.InteropServices;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Outlook;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Host
{
    [ComVisible(true)]
    [Guid(Connect.Clsid)]
    [ProgId(Connect.ProgIdName)]
    [ClassInterface(ClassInterfaceType.AutoDispatch)]
    public class Connect : IDTExtensibility2, IRibbonExtensibility
    {
        /// <summary>The add-in's CLSID and ProgId: installer/windows/opconnect.wxs registers exactly these (a test checks).</summary>
        public const string Clsid = "CE04127D-F0FA-4314-A510-BEB7DDF0D372";
        public const string ProgIdName = "OpConnect.OutlookAddIn";

        object application;
        Win32MainThread mainThread;
        AgentClient agent;
        OutlookAdapter adapter;
        Controller controller;
        Commands commands;
        readonly SyncProgress progress = new SyncProgress();
        object ribbon;

        static string DataDir()
        {
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "opconnect");
        }

        static void Log(string line)
        {
            try
            {
                Directory.CreateDirectory(DataDir());
                File.AppendAllText(Path.Combine(DataDir(), "outlook-addin.log"), DateTime.Now.ToString("s") + " " + line + Environment.NewLine);
            }
            catch (IOException) { }
        }

        public void OnConnection(object Application, ext_ConnectMode ConnectMode, object AddInInst, ref Array custom)
        {
            application = Application;
            // Loaded after start-up (the user ticked the add-in): start-up work happens now.
            if (ConnectMode == ext_ConnectMode.ext_cm_AfterStartup) { Array none = null; OnStartupComplete(ref none); }
        }

        public void OnStartupComplete(ref Array custom)
        {
            if (controller != null) return;
            try
            {
                mainThread = new Win32MainThread();
                agent = new AgentClient(NamedPipeTransport.ForCurrentUser(), AgentLauncher.For(AgentLauncher.InstalledPath()), "opconnect-outlook");
                agent.Event += progress.Observe;
                progress.Changed += text => RefreshProgress();
                adapter = new OutlookAdapter(application);
                var store = new StateStore(Path.Combine(DataDir(), "outlook-sync.json"));
                var engine = new SyncEngine(agent, adapter, mainThread, store);
                controller = new Controller(agent, engine, Log);
                adapter.ItemEvent = folder => controller.OutlookChanged();
                commands = new Commands(agent, new MessageBoxPrompt(), controller.Trigger);
                agent.Start();
                controller.Start();
            }
            catch (Exception e) { Log("start failed: " + e); }
        }

        public void OnBeginShutdown(ref Array custom) { Stop(); }

        public void OnDisconnection(ext_DisconnectMode RemoveMode, ref Array custom)
        {
            Stop();
            Late.Release(application);
            application = null;
        }

        public void OnAddInsUpdate(ref Array custom) { }

        // Never waits on the agent or the worker: both are background threads.
        void Stop()
        {
            if (controller != null) controller.Dispose();
            if (agent != null) agent.Dispose();
            if (mainThread != null) mainThread.Dispose();
            if (adapter != null) adapter.DetachEvents();
            controller = null;
            agent = null;
            mainThread = null;
            adapter = null;
        }

        public string GetCustomUI(string RibbonID)
        {
            if (RibbonID != "Microsoft.Outlook.Explorer") return null;
            return @"<customUI xmlns=""http://schemas.microsoft.com/office/2009/07/customui"" onLoad=""OnRibbonLoad"">
  <ribbon><tabs><tab idMso=""TabHome""><group id=""opconnect"" label=""opconnect"">
    <labelControl id=""ocProgress"" getLabel=""GetProgressLabel""/>
    <button id=""ocSync"" label=""Sync now"" imageMso=""RecurrenceEdit"" size=""large"" onAction=""OnSyncNow""/>
    <button id=""ocPause"" label=""Pause / resume"" imageMso=""Pause"" onAction=""OnPause""/>
    <button id=""ocOoo"" label=""Out of office"" imageMso=""OutOfOffice"" onAction=""OnOutOfOffice""/>
    <button id=""ocStatus"" label=""Status report"" imageMso=""Info"" onAction=""OnStatus""/>
    <button id=""ocConflicts"" label=""Conflicts"" imageMso=""ReviewCompareMenu"" onAction=""OnConflicts""/>
  </group></tab></tabs></ribbon>
</customUI>";
        }

        // The progress label (README "Progress of a sync"): the ribbon asks for it again when invalidated,
        // which must happen on Outlook's thread. UNTESTED here (no Outlook); SyncProgress is tested.
        public void OnRibbonLoad(object ribbonUI) { ribbon = ribbonUI; }
        public string GetProgressLabel(object control) { return progress.Text; }

        void RefreshProgress()
        {
            var r = ribbon;
            var main = mainThread;
            if (r == null || main == null) return;
            // Not on the IPC reader thread: it must never wait for Outlook's.
            System.Threading.ThreadPool.QueueUserWorkItem(_ =>
            {
                try { main.Invoke<object>(() => { ((dynamic)r).InvalidateControl("ocProgress"); return null; }); }
                catch (Exception e) { Log("progress label: " + e.Message); }
            });
        }

        // Ribbon callbacks (late-bound by name through IDispatch). IPC runs off Outlook's thread.
        public void OnSyncNow(object control) { Background(() => commands.SyncNow()); }
        public void OnPause(object control) { Background(() => commands.TogglePause()); }
        public void OnOutOfOffice(object control) { Background(() => commands.OutOfOffice()); }
        public void OnStatus(object control) { Background(() => commands.ShowStatus()); }
        public void OnConflicts(object control) { Background(() => commands.Conflicts()); }

        void Background(Action action)
        {
            var c = commands;
            if (c == null) return;
            System.Threading.ThreadPool.QueueUserWorkItem(_ =>
            {
                try { action(); }
                catch (Exception e) { new MessageBoxPrompt().Show("opconnect", e.Message); }
            });
        }
    }

    /// <summary>Win32 message boxes (no WinForms needed). UNTESTED here.</summary>
    public class MessageBoxPrompt : IPrompt
    {
        [DllImport("user32.dll", CharSet = CharSet.Unicode)]
        static extern int MessageBoxW(IntPtr owner, string text, string caption, uint type);

        const uint MB_OK = 0, MB_OKCANCEL = 1, MB_YESNOCANCEL = 3, MB_YESNO = 4;
        const int IDOK = 1, IDYES = 6, IDNO = 7;

        public void Show(string title, string text) { MessageBoxW(IntPtr.Zero, text, title, MB_OK); }

        public int Choose(string title, string text, string[] options)
        {
            if (options.Length == 1) return MessageBoxW(IntPtr.Zero, text + "\n\nOK: " + options[0], title, MB_OKCANCEL) == IDOK ? 0 : -1;
            if (options.Length == 2)
            {
                int r2 = MessageBoxW(IntPtr.Zero, text + "\n\nYes: " + options[0] + "\nNo: " + options[1], title, MB_YESNO);
                return r2 == IDYES ? 0 : 1;
            }
            // Closing the box picks the last option (for conflicts: keep both, which loses nothing).
            int r = MessageBoxW(IntPtr.Zero, text + "\n\nYes: " + options[0] + "\nNo: " + options[1] + "\nCancel: " + options[2], title, MB_YESNOCANCEL);
            return r == IDYES ? 0 : r == IDNO ? 1 : 2;
        }
    }
}

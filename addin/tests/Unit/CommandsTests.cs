// The ribbon's commands as IPC conversations, with a scripted user.
using System.Collections.Generic;
using NUnit.Framework;
using OpConnect.Outlook.Host;

namespace OpConnect.Outlook.Tests
{
    class ScriptedPrompt : IPrompt
    {
        public readonly List<string> Shown = new List<string>();
        public int Answer;
        public void Show(string title, string text) { Shown.Add(title + ": " + text); }
        public int Choose(string title, string text, string[] options) { Shown.Add(title + ": " + text); return Answer; }
    }

    [TestFixture]
    public class CommandsTests
    {
        [Test]
        public void Sync_now_asks_the_agent_and_runs_a_round()
        {
            var agent = new FakeAgent();
            int rounds = 0;
            new Commands(agent, new ScriptedPrompt(), () => rounds++).SyncNow();
            Assert.AreEqual(1, agent.Count("sync"));
            Assert.AreEqual(1, rounds);
        }

        [Test]
        public void Pause_toggles_and_the_status_report_lists_accounts()
        {
            var agent = new FakeAgent();
            var prompt = new ScriptedPrompt();
            var commands = new Commands(agent, prompt, null);
            Assert.IsTrue(commands.TogglePause());
            Assert.AreEqual(1, agent.Count("pause"));
            commands.ShowStatus();
            StringAssert.Contains("alice: online, 0 pending, 0 conflicts", prompt.Shown[0]);
        }

        [Test]
        public void Conflicts_are_resolved_as_the_user_chooses_and_out_of_office_switches_on()
        {
            var agent = new FakeAgent();
            var prompt = new ScriptedPrompt { Answer = 2 };
            Assert.AreEqual(1, new Commands(agent, prompt, null).Conflicts());
            Assert.AreEqual(1, agent.Count("conflicts.resolve"));
            StringAssert.Contains("Lunch changed on both sides", prompt.Shown[0]);
            prompt.Answer = 0;
            new Commands(agent, prompt, null).OutOfOffice();
            Assert.AreEqual(1, agent.Count("ooo.set"));
        }
    }
}
